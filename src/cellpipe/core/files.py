"""Files a cell reads and writes: paths given to the common readers and writers.

Notebooks pass data through files as often as through variables (``df.to_csv("x.csv")``
here, ``pd.read_csv("x.csv")`` there). A call of a known reader or writer whose path is
built from literals, f-strings, ``os.path.join``, ``pathlib`` and names bound to such
paths gives a *path template*: a tuple of parts, each a literal string, ``("name", id)``
for a name that linking resolves (a parameter, or a variable bound to a path), or None for
what cannot be known statically. Linking turns templates into patterns (``*`` where a
parameter goes) and links a read to the last earlier step that writes a matching path.
"""

from __future__ import annotations

import ast
import fnmatch
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

Part = str | tuple[str, str] | None
Template = tuple[Part, ...]

# pandas readers (``pd.read_csv(path)``) and frame/series writers (``df.to_csv(path)``).
_PANDAS_READERS = frozenset({
    "read_csv", "read_table", "read_parquet", "read_feather", "read_json", "read_excel",
    "read_pickle", "read_hdf", "read_orc", "read_stata", "read_sas", "read_spss", "read_xml",
    "read_fwf", "read_html",
})
_WRITER_METHODS = frozenset({
    "to_csv", "to_parquet", "to_feather", "to_json", "to_excel", "to_pickle", "to_hdf",
    "to_orc", "to_stata", "to_xml", "to_html", "to_latex", "to_markdown", "tofile",
    "savefig", "save", "write_text", "write_bytes", "to_netcdf", "to_file",
})
_PATH_READ_METHODS = frozenset({"read_text", "read_bytes"})
_PATH_WRITE_METHODS = frozenset({"write_text", "write_bytes"})
# module-level functions: (module roots, name) → what the path argument is used for
_FUNCTIONS: dict[str, tuple[str, int]] = {
    # name: (effect, index of the path argument)
    "np.load": ("read", 0), "np.loadtxt": ("read", 0), "np.genfromtxt": ("read", 0),
    "np.fromfile": ("read", 0), "np.save": ("write", 0), "np.savez": ("write", 0),
    "np.savez_compressed": ("write", 0), "np.savetxt": ("write", 0),
    "joblib.load": ("read", 0), "joblib.dump": ("write", 1),
    "plt.savefig": ("write", 0), "plt.imread": ("read", 0), "plt.imsave": ("write", 0),
    "os.makedirs": ("mkdir", 0), "os.mkdir": ("mkdir", 0),
    "os.remove": ("write", 0), "os.unlink": ("write", 0),
    "torch.save": ("write", 1), "torch.load": ("read", 0),
    "shutil.rmtree": ("write", 0), "os.chdir": ("chdir", 0),
}
_ALIASES = {"numpy": "np", "matplotlib.pyplot": "plt", "pandas": "pd"}
# (read index, write index) of copying functions
_COPIES = {"shutil.copy": (0, 1), "shutil.copyfile": (0, 1), "shutil.copy2": (0, 1),
           "shutil.copytree": (0, 1), "shutil.move": (0, 1), "os.rename": (0, 1),
           "os.replace": (0, 1)}
_PATH_MAKERS = frozenset({"Path", "pathlib.Path", "PurePath", "pathlib.PurePath",
                          "PosixPath", "pathlib.PosixPath"})
_JOINS = frozenset({"os.path.join", "posixpath.join", "path.join"})


@dataclass(frozen=True)
class FileEffect:
    """One file operation of a call: ``read``, ``write``, ``append``, ``mkdir`` of ``path``.

    ``path`` is None when the call certainly touches a file but its path cannot be known.
    """

    kind: str
    path: Template | None


def dotted_name(node: ast.expr) -> str:
    """``a.b.c`` for an attribute chain on a name ("" for anything else)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def _dotted(node: ast.expr) -> str:
    """:func:`dotted_name` with the usual module aliases (``numpy.load`` → ``np.load``)."""
    dotted = dotted_name(node)
    for long, short in _ALIASES.items():
        if dotted.startswith(long + "."):
            return short + dotted[len(long):]
    return dotted


def path_template(node: ast.expr | None) -> Template | None:
    """The template of a path expression, or None when nothing of it is known."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Name):
        return (("name", node.id),)
    if isinstance(node, ast.JoinedStr):
        parts: list[Part] = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) \
                    and value.format_spec is None and value.conversion == -1:
                parts.append(("name", value.value.id))
            else:
                parts.append(None)
        return tuple(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # Path("a") / "b"
        left, right = path_template(node.left), path_template(node.right)
        if left is None or right is None:
            return None
        return (*left, "/", *right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # "data/" + name
        left, right = path_template(node.left), path_template(node.right)
        if left is None or right is None:
            return None
        return (*left, *right)
    if isinstance(node, ast.Call):
        func = _dotted(node.func)
        if func in _JOINS or func in _PATH_MAKERS:
            if not node.args:
                return None
            joined: list[Part] = []
            for index, arg in enumerate(node.args):
                part = path_template(arg)
                if part is None:
                    return None
                if index:
                    joined.append("/")
                joined.extend(part)
            return tuple(joined)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("joinpath",):
            base = path_template(node.func.value)
            rest = [path_template(a) for a in node.args]
            if base is None or any(r is None for r in rest):
                return None
            out: list[Part] = list(base)
            for part in rest:
                out.extend(("/", *(part or ())))
            return tuple(out)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute",
                                                                      "expanduser"):
            return path_template(node.func.value)
    return None


def _argument(call: ast.Call, index: int, *keywords: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in keywords:
            return keyword.value
    if index < len(call.args) and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    return None


def _open_mode(call: ast.Call, index: int) -> str | None:
    mode = _argument(call, index, "mode")
    if mode is None:
        return "r"
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return mode.value
    return None


def file_effects(call: ast.Call) -> list[FileEffect]:
    """The file operations one call makes (empty for a call that touches no known file)."""
    func = call.func
    dotted = _dotted(func)
    if dotted in ("open", "io.open", "codecs.open", "gzip.open", "bz2.open", "lzma.open"):
        mode = _open_mode(call, 1)
        path = path_template(_argument(call, 0, "file", "filename"))
        if mode is None:
            return [FileEffect("read", path), FileEffect("write", path)]
        effects = []
        if "r" in mode or "+" in mode:
            effects.append(FileEffect("read", path))
        if "a" in mode:  # appending (a log): no order among appenders, readers after them
            effects.append(FileEffect("append", path))
        elif any(c in mode for c in "wx+"):
            effects.append(FileEffect("write", path))
        return effects
    if dotted in _COPIES:
        read_at, write_at = _COPIES[dotted]
        return [FileEffect("read", path_template(_argument(call, read_at, "src"))),
                FileEffect("write", path_template(_argument(call, write_at, "dst")))]
    if dotted in _FUNCTIONS:
        kind, index = _FUNCTIONS[dotted]
        return [FileEffect(kind, path_template(_argument(call, index, "file", "fname",
                                                         "filename", "f", "name", "path")))]
    if not isinstance(func, ast.Attribute):
        return []
    attr = func.attr
    if attr in _PANDAS_READERS and _dotted(func.value) in ("pd", "pandas"):
        return [FileEffect("read", path_template(_argument(call, 0, "filepath_or_buffer",
                                                           "path", "path_or_buf", "io")))]
    if attr == "open" and isinstance(func.value, ast.Call) and \
            _dotted(func.value.func) in _PATH_MAKERS:  # Path("x").open("w")
        mode = _open_mode(call, 0)
        path = path_template(func.value)
        kind = "write" if mode is not None and any(c in mode for c in "wax") else "read"
        return [FileEffect(kind, path)]
    if attr in _PATH_READ_METHODS:
        return [FileEffect("read", path_template(func.value))]
    if attr in _PATH_WRITE_METHODS:
        return [FileEffect("write", path_template(func.value))]
    if attr == "mkdir" and isinstance(func.value, (ast.Call, ast.BinOp)):  # Path(...).mkdir()
        return [FileEffect("mkdir", path_template(func.value))]
    if attr in _WRITER_METHODS and attr not in ("save",):
        target = _argument(call, 0, "path_or_buf", "path", "fname", "excel_writer", "buf",
                           "file")
        if target is None:
            return []  # df.to_csv() with no path returns text
        template = path_template(target)
        if template is None and isinstance(target, (ast.Name, ast.Attribute)):
            return []  # most likely a buffer (io.StringIO) or an open file
        return [FileEffect("write", template)]
    return []


def resolve(template: Template, lookup: Callable[[str], Template | str | None],
            depth: int = 0) -> str | None:
    """A path pattern from a template (``*`` where a parameter or run-time name goes).

    ``lookup(name)`` answers the template a name is bound to, the string ``"*"`` for a
    parameter, or None when the name's value is not a known path.
    """
    out: list[str] = []
    for part in template:
        if part is None:
            return None
        if isinstance(part, str):
            out.append(part)
            continue
        found = lookup(part[1]) if depth < 8 else None
        if found is None:
            return None
        if isinstance(found, str):
            out.append(found)
            continue
        inner = resolve(found, lookup, depth + 1)
        if inner is None:
            return None
        out.append(inner)
    text = "".join(out)
    if not text:
        return None
    return normalize(text)


def normalize(path: str) -> str:
    """A path as linking compares them: ``./data//x.csv`` → ``data/x.csv``."""
    path = path.replace("\\", "/")
    if path.startswith("~") or "://" in path:
        return path
    return posixpath.normpath(path)


def is_pattern(path: str) -> bool:
    """Whether a path is a glob pattern (a parameter's ``*``, or a declared glob)."""
    return "*" in path or "?" in path or "[" in path


def workflow_artifact(path: str) -> bool:
    """Whether a written path can be a workflow's own artifact (one fixed local path).

    Argo moves such a file between pods itself; patterns (a parameter's ``*``), home
    paths and URLs travel through cellpipe's store or not at all.
    """
    return not is_pattern(path) and not path.startswith("~") and "://" not in path


def matches(a: str, b: str) -> bool:
    """Whether two path patterns may name the same file."""
    if a == b:
        return True
    if is_pattern(a) and fnmatch.fnmatchcase(b, a):
        return True
    if is_pattern(b):
        return fnmatch.fnmatchcase(a, b)
    return False


def inside(path: str, directory: str) -> bool:
    """Whether ``path`` lies in (or is) ``directory`` (patterns allowed)."""
    if matches(path, directory):
        return True
    parts = path.split("/")
    return any(matches("/".join(parts[:i]), directory) for i in range(1, len(parts)))

