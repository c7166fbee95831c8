"""The step cache: reuse a step's results when nothing it depends on changed.

A step's key hashes its code, the digest (BLAKE3) of every input it reads, the values of the
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
from cellpipe.core.spec import StepSpec


def step_key_parts(
    step: StepSpec,
    input_hashes: Mapping[str, str],
    parameters: Mapping[str, Any],
    fingerprint: str,
    files: Mapping[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
    distributions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The parts a step's result depends on (JSON-able, compared to explain reruns).

    Its code; its input values' hashes; the parameters it reads; the content of each file
    it reads; the source of the notebook's own modules it imports; the versions of the
    distributions it imports (and Python's); the engine's fingerprint.
    """
    parts: dict[str, Any] = {
        "code": hashlib.sha256(step.code.encode()).hexdigest(),
        "inputs": dict(sorted(input_hashes.items())),
        "parameters": {p: parameters.get(p) for p in sorted(step.parameters)},
        "environment": fingerprint,
    }
    if files:
        parts["files"] = dict(sorted(files.items()))
    if modules:
        parts["modules"] = dict(sorted(modules.items()))
    if distributions:
        parts["distributions"] = dict(sorted(distributions.items()))
    return parts


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
        """Remember that ``key``'s results are in ``entry['store']``.

        Not fsynced: an entry lost or emptied by a power loss is a miss (the step runs
        again), never a wrong hit, so the sync would buy nothing (~3 ms a step).
        """
        write_text_atomic(self.root / "keys" / f"{key}.json", json.dumps(dict(entry), indent=1),
                          durable=False)

    def why(self, notebook: str, step: str, parts: Mapping[str, Any]) -> str:
        """Why the step must run, compared with the last time it ran; then remember ``parts``."""
        path = self.root / "last" / _slug(notebook) / f"{step}.json"
        try:
            last = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            last = None
        text = json.dumps(dict(parts), indent=1, default=repr)
        if last is None or json.dumps(last, indent=1, default=repr) != text:
            write_text_atomic(path, text, durable=False)  # only the reason depends on it
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
        reason = _changed_entries(last, parts)
        if reason:
            return reason
        if last.get("environment") != parts["environment"]:
            return "the environment changed (Python or package versions)"
        return "no cached result (it was removed or never finished)"


def _slug(path: str) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]


def _changed_entries(last: Mapping[str, Any], parts: Mapping[str, Any]) -> str | None:
    """"file data/x.csv changed", "module helpers changed", "scikit-learn 1.5.2 → 1.6.0"."""
    before, now = last.get("files", {}), parts.get("files", {})
    changed = [f for f in sorted(set(before) | set(now)) if before.get(f) != now.get(f)]
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3
                                           else "")
        new = [f for f in changed if f not in before]
        gone = [f for f in changed if now.get(f) in (None, "missing")]
        verb = "is new" if len(new) == len(changed) else "is gone" if len(gone) == len(
            changed) else "changed"
        return f"file{'s' if len(changed) > 1 else ''} {shown} {verb}"
    before, now = last.get("modules", {}), parts.get("modules", {})
    changed = [m for m in sorted(set(before) | set(now)) if before.get(m) != now.get(m)]
    if changed:
        return f"module{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed"
    before, now = last.get("distributions", {}), parts.get("distributions", {})
    changed = [d for d in sorted(set(before) | set(now)) if before.get(d) != now.get(d)]
    if changed:
        return ", ".join(f"{d} {before.get(d, '(none)')} → {now.get(d, '(none)')}"
                         for d in changed[:3])
    return None
