"""The values and files a step reads and leaves: loaded before its cells, saved after.

Inputs come from the run's store (or an earlier run's, for reused steps); outputs are the
names later steps read, names that share objects are saved together, and the values a
step was not expected to change are checked after it ran.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.core.spec import StepSpec
from cellpipe.errors import CellpipeError
from cellpipe.runtime.request import EXIT_OK, EXIT_USER, StepRequest
from cellpipe.runtime.state import (
    DYNAMIC_NAMES,
    RANDOM_STATE,
    artifact_name,
    capture_random_state,
    digests,
    is_session_name,
    random_state_digests,
    restore_random_state,
)


def load_inputs(request: StepRequest, step: StepSpec) -> dict[str, Any]:
    """Load every value the step reads from the store of the step that produced it.

    Raises:
        MarshalError: an input is missing or corrupted (cellpipe's side, not the user's).
    """
    from cellpipe.marshal import ArtifactNotFoundError, MarshalError, open_store

    store = open_store(request.store)
    values: dict[str, Any] = {}
    by_producer: dict[str, list[str]] = {}
    for variable, producer in step.reads.items():
        if variable.isidentifier():
            by_producer.setdefault(producer, []).append(variable)
        source = request.input_stores.get(producer)
        try:
            value = (open_store(source) if source else store).load(
                producer, artifact_name(variable))
            if variable == RANDOM_STATE:  # continue from the state the step before left
                restore_random_state(value)  # type: ignore[arg-type]
            elif variable == DYNAMIC_NAMES:  # every name an earlier dynamic step exported
                producer_store = open_store(source) if source else store
                for name in value:  # type: ignore[attr-defined]
                    if name not in step.reads:
                        values[name] = producer_store.load(producer, name)
            else:
                values[variable] = value
        except MarshalError as exc:
            if (isinstance(exc, ArtifactNotFoundError) and step.dynamic
                    and variable.isidentifier()):
                continue  # received because names are unknown; its producer did not make it
            raise type(exc)(
                f"cannot load input {variable!r} from step {producer!r}: {exc.message}",
                step=producer, variable=variable, path=exc.path, hint=exc.hint,
                type_name=exc.type_name,
            ) from exc
    for producer, names in by_producer.items():
        if len(names) > 1:
            source = request.input_stores.get(producer)
            _load_identity_groups(open_store(source) if source else store, producer, values,
                                  names)
    return values


def save_outputs(
    request: StepRequest,
    step: StepSpec,
    namespace: Mapping[str, Any],
    result: dict[str, Any],
) -> int:
    """Save what the step leaves for later steps, and its metrics, into ``result``.

    Returns ``EXIT_USER`` when a value cannot be passed on (the user's to fix).
    """
    from cellpipe.marshal import MarshalError, open_store

    store = open_store(request.store)
    consumers = request.spec.consumers(step.name)
    names = list(step.writes)
    if step.dynamic:
        names = _dynamic_exports(namespace, names)
    outputs: dict[str, Any] = {}
    missing = []
    not_kept: dict[str, dict[str, Any]] = {}
    for name in [n for n in names if n != DYNAMIC_NAMES]:
        if name == RANDOM_STATE:
            value: Any = capture_random_state()
        elif name not in namespace:
            missing.append(name)  # assigned on a branch that did not run
            continue
        else:
            value = namespace[name]
        try:
            meta = store.save(step.name, artifact_name(name), value,
                              consumers=consumers.get(name, ()))
        except MarshalError as exc:
            if not consumers.get(name):
                # Nobody downstream reads it (a closed file, a loop's iterator, a figure
                # that does not pickle): not kept, and said so, instead of failing.
                not_kept[name] = _not_kept(value, exc)
                continue
            result["error"] = exc.to_dict(kind="user")
            print(f"cellpipe: {exc}", file=sys.stderr)
            return EXIT_USER
        outputs[name] = meta.to_dict()
    _save_identity_groups(store, step.name, namespace, list(outputs))
    if DYNAMIC_NAMES in names:  # the names exported, with their hashes: one artifact
        index = {n: m["digest"] for n, m in outputs.items() if n.isidentifier()}
        meta = store.save(step.name, artifact_name(DYNAMIC_NAMES), index)
        outputs[DYNAMIC_NAMES] = meta.to_dict()
    result["outputs"] = outputs
    result["not_produced"] = missing
    if not_kept:
        result["not_kept"] = not_kept
    result["metrics"] = _metrics(step, namespace)
    return EXIT_OK


IDENTITY_GROUPS = "identity-groups"


FILES_INDEX = "files-index"


def save_files(request: StepRequest, step: StepSpec) -> dict[str, dict[str, Any]]:
    """Save the files the step wrote into the store, with an index; return the index.

    The files are those its ``files.writes`` patterns name, relative to the working
    directory. The index maps each relative path to its artifact (checked by its sidecar)
    and size; under ``carry_files="workflow"`` a literal path's bytes are the workflow's to
    move (an Argo artifact), so only its digest is kept, for the reader to check.
    """
    import glob

    from cellpipe.core.files import workflow_artifact
    from cellpipe.marshal import open_store
    from cellpipe.marshal.hashing import ALGORITHM, file_digest

    store = open_store(request.store)
    index: dict[str, dict[str, Any]] = {}
    for pattern in step.file_writes:
        carried = request.carry_files == "store" or not workflow_artifact(pattern)
        for path in sorted(glob.glob(pattern, recursive=True)) or [pattern]:
            found = Path(path)
            files = sorted(p for p in found.rglob("*") if p.is_file()) if found.is_dir() \
                else [found] if found.is_file() else []
            for file in files:
                entry: dict[str, Any] = {"artifact": None}
                if carried:  # its artifact's sidecar holds the check
                    entry["artifact"] = f"file-{len(index)}"
                    meta = store.save(step.name, entry["artifact"], file.read_bytes())
                    entry["size"] = meta.size
                else:  # the workflow moves it: the reader checks this digest
                    digest, size = file_digest(file, ALGORITHM)
                    entry.update(algorithm=ALGORITHM, digest=digest, size=size)
                index[file.as_posix()] = entry
    store.save(step.name, FILES_INDEX, index)
    return index


def restore_files(request: StepRequest, step: StepSpec) -> None:
    """Put the files the step reads from earlier steps where the notebook has them.

    Each carried file is checked by the store (size and hash) as it is read and written
    atomically; a file the workflow placed (an Argo input artifact) is checked against the
    digest its writer recorded.
    """
    from cellpipe.core.files import matches
    from cellpipe.marshal import ArtifactNotFoundError, open_store
    from cellpipe.marshal.hashing import file_digest

    for pattern, producer in sorted(step.file_reads.items()):
        if producer is None:
            continue  # an external input: the image or a volume holds it
        source = request.input_stores.get(producer)
        store = open_store(source) if source else open_store(request.store)
        try:
            index = store.load(producer, FILES_INDEX)
        except ArtifactNotFoundError:
            continue
        for path, entry in index.items():  # type: ignore[attr-defined]
            if not (matches(path, pattern) or path.startswith(pattern.rstrip("/") + "/")):
                continue
            target = Path(path)
            if entry.get("artifact") is not None:
                data = store.load(producer, entry["artifact"])
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.cellpipe-tmp")
                tmp.write_bytes(data)  # type: ignore[arg-type]
                os.replace(tmp, target)
                continue
            where = f"file {path} that step {producer!r} wrote"
            if not target.is_file():
                raise CellpipeError(
                    f"{where} is not here: the workflow did not put it in place",
                    step=step.name,
                    hint="check the step's input artifacts in the workflow (Argo copies them "
                    "in before the step starts)",
                )
            algorithm = entry.get("algorithm", "sha256")
            digest, _ = file_digest(target, algorithm)
            if digest != entry.get("digest", entry.get("sha256")):
                raise CellpipeError(
                    f"{where} has other content here ({algorithm} {digest[:12]}…, written "
                    f"as {entry.get('digest', entry.get('sha256', ''))[:12]}…)",
                    step=step.name,
                    hint="the workflow's artifact store gave other bytes; rerun the writer",
                )


def _save_identity_groups(store: Any, step: str, namespace: Mapping[str, Any],
                          names: list[str]) -> None:
    """Outputs that share objects (``combine = [train_df, test_df]``) are saved together too.

    Each output is saved on its own for steps that read one of them; a step that reads
    several of one group loads the group, so a change through one name shows through the
    other in that step as it does in the notebook.
    """
    groups = shared_groups({n: namespace[n] for n in names if n.isidentifier() and n in namespace})
    if not groups:
        return
    index: dict[str, str] = {}
    for number, members in enumerate(groups):
        artifact = f"identity-{number}"
        store.save(step, artifact, {name: namespace[name] for name in members})
        index.update(dict.fromkeys(members, artifact))
    store.save(step, IDENTITY_GROUPS, index)


def shared_groups(values: Mapping[str, Any]) -> list[list[str]]:
    """Names whose values share objects (one is, or holds, another's object), grouped."""
    import types

    owners: dict[int, str] = {}
    parent = {name: name for name in values}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name, value in values.items():
        if isinstance(value, (int, float, str, bytes, bool, type(None), types.ModuleType)):
            continue
        ids = {id(value)}
        if isinstance(value, (list, tuple, set, frozenset)):
            ids |= {id(v) for v in value if not isinstance(v, (int, float, str, bool))}
        elif isinstance(value, dict):
            ids |= {id(v) for v in value.values() if not isinstance(v, (int, float, str, bool))}
        for key in ids:
            other = owners.setdefault(key, name)
            if other != name:
                parent[root(name)] = root(other)
    groups: dict[str, list[str]] = {}
    for name in values:
        groups.setdefault(root(name), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def _load_identity_groups(store: Any, producer: str, values: dict[str, Any],
                          names: list[str]) -> None:
    """Replace names read from ``producer`` that it saved as one group by that group's values."""
    from cellpipe.marshal import ArtifactNotFoundError

    try:
        index = store.load(producer, IDENTITY_GROUPS)
    except ArtifactNotFoundError:
        return
    wanted: dict[str, list[str]] = {}
    for name in names:
        if name in index:
            wanted.setdefault(index[name], []).append(name)
    for artifact, members in wanted.items():
        if len(members) > 1:
            group = store.load(producer, artifact)
            values.update({name: group[name] for name in members})


def _dynamic_exports(namespace: Mapping[str, Any], declared: list[str]) -> list[str]:
    """For steps the analyzer cannot follow: every plain global of the user's it ends with.

    IPython's own names (``In``, ``Out``, ``_``, ``_i3``, ``get_ipython``, everything in
    the shell's ``user_ns_hidden``) and cellpipe's are never the user's.
    """
    import types

    hidden = _hidden_names()
    names = list(declared)
    for name, value in namespace.items():
        if name.startswith("_") or name in names or is_session_name(name, hidden):
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        names.append(name)
    return names


def _hidden_names() -> set[str]:
    """The names IPython put in the user namespace itself (``shell.user_ns_hidden``)."""
    try:
        from IPython.core.getipython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython is a dependency
        return set()
    return set(getattr(shell, "user_ns_hidden", {}) or {}) if shell is not None else set()


def _not_kept(value: Any, error: Exception) -> dict[str, Any]:
    """Why a value nobody reads later was not saved (``run.json`` and ``Run.load`` say it)."""
    from cellpipe.marshal.meta import qualified_name
    from cellpipe.marshal.unmarshallable import describe

    known = describe(value)
    what = known[0] if known else "a value that cannot be saved"
    type_name = qualified_name(type(value))
    return {"type": type_name, "what": what,
            "message": f"{what} ({type_name}), not kept: no later step reads it",
            "reason": str(getattr(error, "message", error))[:300]}


def check_assumptions(
    step: StepSpec,
    namespace: Mapping[str, Any],
    before: Mapping[str, bytes],
    random_before: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Warnings for what the step did that analysis did not see (recorded on the run).

    An input changed in place (later steps that read it get the producer's value, not
    the changed one); a draw from the global random state in a step analysis did not
    mark (steps after it that draw start from another state than top to bottom).
    """
    warnings: list[dict[str, Any]] = []
    after = digests(namespace, before)
    for name, digest in before.items():
        if after.get(name, digest) != digest:
            warnings.append({
                "kind": "input-changed", "variable": name,
                "message": f"step {step.name!r} changed {name!r} in place, which cellpipe "
                "did not see in its code: later steps that read it get the value before "
                "this change",
                "hint": f"assign the changed value to a name ({name} = ...) so cellpipe "
                "passes it on, or copy it before changing it",
            })
    if not step.random_state:
        random_after = random_state_digests()
        drawn = sorted(k for k, v in random_before.items() if random_after.get(k) != v)
        if drawn:
            warnings.append({
                "kind": "random-state",
                "message": f"step {step.name!r} drew from the global random state "
                f"({', '.join(drawn)}) where cellpipe saw no draw (a library drawing "
                "internally?): steps after it that draw start from another state than top "
                "to bottom",
                "hint": "pass a seed or a generator (random_state=0) to the library call, "
                "or draw once with np.random in this step so cellpipe threads the state",
            })
    for warning in warnings:
        print(f"cellpipe: warning: {warning['message']}", file=sys.stderr)
    return warnings


def _metrics(step: StepSpec, namespace: Mapping[str, Any]) -> dict[str, Any]:
    import numbers

    metrics: dict[str, Any] = {}
    for name in step.metrics:
        value = namespace.get(name)
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            metrics[name] = value.item() if hasattr(value, "item") else value  # numpy scalars
        elif value is not None:
            try:
                metrics[name] = float(value)
            except (TypeError, ValueError):
                print(f"cellpipe: metric {name!r} is a {type(value).__name__}, not a number; "
                      "it is not reported", file=sys.stderr)
    return metrics
