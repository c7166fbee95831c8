"""What a cluster run breaks on that a local run does not: ``cellpipe lint --target``.

Locally every step runs on this machine, in the notebook's folder. On a cluster each step
is a pod on another machine: it starts from its image in a working directory that holds
only what the image put there and the files earlier steps wrote (those travel with the
run), its own home folder, and its own network, where ``localhost`` is the pod itself. The
checks here read the linked pipeline (each step's file reads and writes, where it makes
them, its settings) and the syntax trees of the planned cells; what the notebook's cluster
settings say reaches them as :class:`ClusterFacts`, read by the caller (``cellpipe.api``)
from ``cellpipe.targets.cluster``, which owns those settings.

Codes (6xx: clusters): CP601 an external input read from the notebook's folder, CP602 a
path of this machine, CP603 a localhost address, CP604 GPUs without node placement, CP605
no memory limit where the settings require one, CP606 no memory limit (info).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cellpipe.core.analysis import CellCode
from cellpipe.core.diagnostics import Diagnostic, Severity
from cellpipe.core.pipeline import Pipeline, Step
from cellpipe.core.plan import Plan

# Folders every Linux image has: reading /etc/hosts or writing /dev/null works in a pod.
_SYSTEM = ("/dev/", "/proc/", "/sys/", "/etc/", "/usr/", "/bin/", "/lib/")
_SCRATCH = "/tmp/"  # a pod has its own: writing there works, reading this machine's does not
_WINDOWS = re.compile(r"^(?:[A-Za-z]:/|//)")  # C:\data (normalized to C:/data), \\server\share

# A URL whose host is this machine: http://localhost:8000, postgresql://u:p@127.0.0.1/db.
_LOCAL_URL = re.compile(
    r"[a-z][a-z0-9+.-]*://(?:[^/@\s]*@)?(?:localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[::1\])"
    r"(?=[:/?#\s]|$)[^\s'\"]*",
    re.IGNORECASE,
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Keywords and variable names that hold a host: connect(host="localhost"), DB_HOST = "…".
_HOST_WORDS = ("host", "server", "addr", "address")
# Calls whose string arguments are text for people or for other strings, not addresses.
_TEXT_CALLS = frozenset({"print", "display", "Markdown", "HTML", "warn", "debug", "info",
                         "warning", "error", "exception", "critical", "log"})
_STR_METHODS = frozenset({"replace", "startswith", "endswith", "split", "rsplit", "find",
                          "rfind", "index", "count", "strip", "lstrip", "rstrip", "join",
                          "format", "encode", "removeprefix", "removesuffix", "partition"})
_SHELL = frozenset({"system", "getoutput"})  # !cmd and x = !cmd, run in the pod's shell
_CHDIR = ("os.chdir", "chdir")


@dataclass(frozen=True)
class ClusterFacts:
    """What the notebook's cluster settings say that lint checks steps against.

    Attributes:
        placed: Steps the settings give a node selector or a toleration.
        require_limits: The settings ask every step for a memory limit.
    """

    placed: frozenset[str] = frozenset()
    require_limits: bool = False


def cluster_diagnostics(pipeline: Pipeline, plan: Plan,
                        facts: ClusterFacts | None = None) -> list[Diagnostic]:
    """Everything a cluster run of ``pipeline`` would break on that a local run would not.

    Args:
        pipeline: The linked pipeline (its steps' files and settings).
        plan: The plan it was linked from (the cells' syntax trees).
        facts: What the cluster settings say (placement, required limits); None: nothing.

    Returns:
        CP601–CP606 diagnostics, in step order.
    """
    facts = facts or ClusterFacts()
    found: list[Diagnostic] = []
    for step in pipeline.steps:
        found += _file_diagnostics(step)
        found += _resource_diagnostics(step, facts)
    for step_name, code in _planned_cells(plan):
        found += _address_diagnostics(step_name, code)
    return found


# -- files -------------------------------------------------------------------------------


def local_path(path: str, *, write: bool = False) -> str | None:
    """Why ``path`` (a linking pattern) names this machine, or None when a pod has it too.

    URLs and relative paths are not this machine's; a system folder is in every image;
    a pod writes its own ``/tmp``.
    """
    if "://" in path:
        return None
    if path.startswith("~"):
        return "a home folder of this machine"
    if _WINDOWS.match(path):
        return "a Windows path of this machine"
    if not path.startswith("/") or path.startswith(_SYSTEM):
        return None
    if write and path.startswith(_SCRATCH):
        return None
    return "an absolute path of this machine"


def _file_diagnostics(step: Step) -> Iterator[Diagnostic]:
    first_cell = step.cells[0][0] if step.cells else None
    written = set(step.file_writes)
    reported: set[str] = set()

    def at(path: str) -> tuple[int | None, int | None]:
        cell, line = step.file_lines.get(path, (first_cell, None))
        return cell, line

    for path in step.file_writes:
        why = local_path(path, write=True)
        if why is not None:
            reported.add(path)
            cell, line = at(path)
            yield _this_machine(step, path, why, "writes", cell, line)
    for path, producer in step.file_reads.items():
        if producer is not None or path in reported or "://" in path:
            continue  # an earlier step's file travels with the run; URLs are not files here
        why = local_path(path)
        cell, line = at(path)
        if why is not None:
            yield _this_machine(step, path, why, "reads", cell, line)
        elif not path.startswith("/") and path not in written:  # not the step's own cache
            yield _external_input(step, path, cell, line)


def _this_machine(step: Step, path: str, why: str, verb: str, cell: int | None,
                  line: int | None) -> Diagnostic:
    return Diagnostic(
        "warning", "CP602",
        f"step {step.name!r} {verb} {path}, {why}: the pod runs on another machine, "
        "which has no such folder",
        cell=cell, line=line, step=step.name,
        hint="use a path relative to the notebook (files earlier steps write travel with "
        "the run), an s3:// URL, or a parameter that the cluster run sets",
    )


def _external_input(step: Step, path: str, cell: int | None, line: int | None) -> Diagnostic:
    image = step.settings.get("image")
    severity: Severity = "info" if image else "warning"
    where = (f"make sure image {image} holds it in its working directory" if image else
             "the pod's working directory holds only what its image put there and the "
             "files earlier steps wrote")
    return Diagnostic(
        severity, "CP601",
        f"step {step.name!r} reads {path} from the notebook's folder, and no earlier step "
        f"writes it: on a cluster {where}",
        cell=cell, line=line, step=step.name,
        hint=f"put {path} in the step's image (a --base-image or image:REF holding it in "
        "its working directory), read it from object storage (an s3:// URL, e.g. in the "
        "bucket of --storage s3://…), or write it in an earlier step",
    )


# -- resources ---------------------------------------------------------------------------


def _resource_diagnostics(step: Step, facts: ClusterFacts) -> Iterator[Diagnostic]:
    cell = step.cells[0][0] if step.cells else None
    gpus = step.settings.get("gpu") or 0
    if gpus and step.name not in facts.placed:
        yield Diagnostic(
            "warning", "CP604",
            f"step {step.name!r} asks for {gpus} GPU(s), but the cluster settings give it "
            "no node selector or toleration: GPU nodes are usually tainted, so its pod can "
            "stay Pending",
            cell=cell, step=step.name,
            hint='add to the notebook metadata cellpipe.cluster "tolerations": [{"key": '
            '"nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], or a '
            f'"node_selector" (for this step only: "steps": {{"{step.name}": '
            '{"node_selector": {…}}})',
        )
    if step.settings.get("memory") is not None:
        return
    fix = (f"tag the step memory:SIZE (e.g. memory:2Gi, or %%step {step.name} --memory 2Gi)"
           "; it becomes the pod's memory request and limit")
    if facts.require_limits:
        yield Diagnostic(
            "error", "CP605",
            f"step {step.name!r} has no memory limit, and the cluster settings require one "
            "(require_limits): the namespace refuses pods without limits",
            cell=cell, step=step.name, hint=fix,
        )
    else:
        yield Diagnostic(
            "info", "CP606",
            f"step {step.name!r} has no memory limit: the scheduler places its pod without "
            "knowing what it needs, and the node may evict it when memory runs short",
            cell=cell, step=step.name, hint=fix,
        )


# -- addresses ---------------------------------------------------------------------------


def _planned_cells(plan: Plan) -> Iterator[tuple[str | None, CellCode]]:
    """Each planned cell with its step (None: a shared cell, replayed where it is used)."""
    for unit in plan.units:
        if isinstance(unit, CellCode):
            yield None, unit
        else:
            for code in unit.cells:
                yield unit.name, code


def _address_diagnostics(step: str | None, code: CellCode) -> Iterator[Diagnostic]:
    if code.tree is None:
        return
    seen: set[tuple[int, str]] = set()
    for line, found, what in _this_machine_addresses(code.tree):
        line += code.line_offset
        if (line, found) in seen:
            continue
        seen.add((line, found))
        if what == "chdir":
            yield Diagnostic(
                "warning", "CP602",
                f"the working directory is changed to {found}, a folder of this machine: the "
                "pod runs on another machine, which has no such folder",
                cell=code.index, line=line, step=step,
                hint="use paths relative to the notebook instead of changing to this "
                "machine's folders",
            )
            continue
        where = f"step {step!r}" if step else "a cell every later step may replay"
        reaches = {"host": f"connects to host {found!r}", "assign": f"sets {found}"}.get(
            what, f"reaches {found}")
        yield Diagnostic(
            "warning", "CP603",
            f"{where} {reaches}: inside a pod localhost is the pod itself, so the service "
            "running on this machine is not there",
            cell=code.index, line=line, step=step,
            hint="address the service by a name the cluster resolves (a Kubernetes Service "
            "such as http://NAME.NAMESPACE.svc.cluster.local:PORT, or the database's host), "
            "e.g. as a parameter that a local run leaves at localhost",
        )


def _this_machine_addresses(tree: ast.Module) -> Iterator[tuple[int, str, str]]:
    """(line, address or folder, ``url``/``host``/``chdir``) of what names this machine."""
    quiet: set[int] = set()  # strings that are text: docstrings, messages, f-string parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            quiet.add(id(node.value))
        elif isinstance(node, ast.JoinedStr):
            quiet.update(id(part) for part in node.values)
        elif isinstance(node, ast.Call) and _callee(node) in _TEXT_CALLS:
            quiet.update(id(arg) for arg in _arguments(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from _call_addresses(node, quiet)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            text = _text(node.value)
            names = [t.id for t in targets if isinstance(t, ast.Name) and _hostish(t.id)]
            if text and text.strip().lower() in _LOCAL_HOSTS and names:
                yield node.lineno, f"{names[0]} = {text.strip()!r}", "assign"
        if id(node) in quiet:
            continue
        text = _text(node)
        match = _LOCAL_URL.match(text.lstrip()) if text else None
        if match:
            yield getattr(node, "lineno", 1), _shown(match.group(0)), "url"


def _call_addresses(call: ast.Call, quiet: set[int]) -> Iterator[tuple[int, str, str]]:
    callee = _callee(call)
    if callee in _SHELL and _is_ipython(call):  # !curl http://localhost:8000/health
        for arg in call.args:
            text = _text(arg)
            for match in _LOCAL_URL.finditer(text or ""):
                quiet.add(id(arg))
                yield call.lineno, _shown(match.group(0)), "url"
        return
    if (ast.unparse(call.func) in _CHDIR or (
            callee == "run_line_magic" and _is_ipython(call) and len(call.args) == 2
            and _text(call.args[0]) == "cd")) and call.args:
        folder = _text(call.args[-1])
        if folder and local_path(folder.strip().replace("\\", "/")) is not None:
            yield call.lineno, folder.strip(), "chdir"
        return
    if callee in _TEXT_CALLS or callee in _STR_METHODS:
        return
    # A host is a keyword named like one (connect(host="localhost")) or comes with a port:
    # MongoClient("localhost", 27017), socket.create_connection(("localhost", 8080)).
    candidates = [k.value for k in call.keywords if k.arg and _hostish(k.arg)]
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Tuple) and len(first.elts) == 2 and _is_port(first.elts[1]):
        candidates.append(first.elts[0])
    elif first is not None and ((len(call.args) > 1 and _is_port(call.args[1]))
                                or any(k.arg == "port" for k in call.keywords)):
        candidates.append(first)
    for value in candidates:
        text = _text(value)
        if text and text.strip().lower() in _LOCAL_HOSTS:
            yield call.lineno, text.strip(), "host"


def _shown(url: str) -> str:
    """A URL as lint prints it: a password in it masked (CI logs keep what lint prints)."""
    return re.sub(r"(://[^/:@\s]*):[^/@\s]*@", r"\1:***@", url)


def _is_port(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _text(node: ast.AST) -> str | None:
    """A string constant's value; an f-string's with ``{}`` where its values go."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) and
                       isinstance(part.value, str) else "{}" for part in node.values)
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _arguments(call: ast.Call) -> list[ast.expr]:
    return [*call.args, *(k.value for k in call.keywords)]


def _is_ipython(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython")


def _hostish(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _HOST_WORDS)
