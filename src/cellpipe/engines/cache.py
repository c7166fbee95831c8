"""The step cache: reuse a step's results when nothing it depends on changed.

A step's key hashes its code, the sha256 of every input it reads, the values of the
parameters it reads and the runtime's environment fingerprint. The cache remembers, per
key, the run whose artifacts hold the results; and per step, the last key's parts, so a
run can say *why* a step ran ("input df changed", "parameter lr changed", …).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic


def step_key_parts(
    step: Mapping[str, Any],
    input_hashes: Mapping[str, str],
    parameters: Mapping[str, Any],
    fingerprint: str,
) -> dict[str, Any]:
    """The parts a step's result depends on (JSON-able, compared to explain reruns)."""
    return {
        "code": hashlib.sha256(step["code"].encode()).hexdigest(),
        "inputs": dict(sorted(input_hashes.items())),
        "parameters": {p: parameters.get(p) for p in sorted(step.get("parameters", []))},
        "environment": fingerprint,
    }


def key_of(parts: Mapping[str, Any]) -> str:
    """The cache key of a step from its parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


class StepCache:
    """Cache entries under ``<root>/cache``: ``keys/<key>.json`` and ``last/<nb>/<step>.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "cache"

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key`` if its run's artifacts are still there."""
        path = self.root / "keys" / f"{key}.json"
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not Path(entry.get("store", "")).is_dir():
            return None  # the run was deleted
        return entry

    def record(self, key: str, entry: Mapping[str, Any]) -> None:
        """Remember that ``key``'s results are in ``entry['store']``."""
        write_text_atomic(self.root / "keys" / f"{key}.json", json.dumps(dict(entry), indent=1))

    def why(self, notebook: str, step: str, parts: Mapping[str, Any]) -> str:
        """Why the step must run, compared with the last time it ran; then remember ``parts``."""
        path = self.root / "last" / _slug(notebook) / f"{step}.json"
        try:
            last = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            last = None
        write_text_atomic(path, json.dumps(dict(parts), indent=1, default=repr))
        if last is None:
            return "first run of this step"
        if last.get("code") != parts["code"]:
            return "its code changed"
        changed = [n for n, h in parts["inputs"].items() if last.get("inputs", {}).get(n) != h]
        if changed:
            return f"input {', '.join(changed)} changed"
        changed = [
            n for n, v in parts["parameters"].items() if last.get("parameters", {}).get(n) != v
        ]
        if changed:
            return f"parameter {', '.join(changed)} changed"
        if last.get("environment") != parts["environment"]:
            return "the environment changed (Python or package versions)"
        return "no cached result (it was removed or never finished)"


def _slug(path: str) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
