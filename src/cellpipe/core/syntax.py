"""Small readings of Python syntax trees that the cell scanner asks for.

Which names a statement reads, what a walrus binds, whether a value aliases another
object, where an object came from, what names a container holds, and the template of a
path built from literals, names and f-strings.
"""

from __future__ import annotations

import ast
import re

from cellpipe.core.files import dotted_name, path_template


def names_in_template(text: str) -> set[str]:
    """Names IPython expands in shell lines and magics: ``$name`` and ``{expr}``."""
    names = set(re.findall(r"(?<!\$)\$([A-Za-z_]\w*)", text))
    for expr in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", text):
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names

def walrus_targets(node: ast.expr) -> tuple[set[str], set[str]]:
    """Names a comprehension's ``:=`` binds in the enclosing scope, and those it reads first.

    ``[y for x in xs if (y := f(x))]`` binds y; ``[t := t + x for x in xs]`` binds t and
    reads the t that was there before. A lambda's walrus targets stay in the lambda.
    """
    if isinstance(node, ast.Lambda):
        return set(), set()
    targets: set[str] = set()
    read_first: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
            targets.add(sub.target.id)
            if any(
                isinstance(n, ast.Name) and n.id == sub.target.id and isinstance(n.ctx, ast.Load)
                for n in ast.walk(sub.value)
            ):
                read_first.add(sub.target.id)
        stack.extend(c for c in ast.iter_child_nodes(sub) if not isinstance(c, ast.Lambda))
    return targets, read_first

def is_alias_value(value: ast.expr) -> bool:
    """True when assigning ``value`` may share an object with another name."""
    if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript, ast.Starred)):
        return True
    if isinstance(value, (ast.Tuple, ast.List)):
        return any(is_alias_value(e) for e in value.elts)
    return False

def through_element(obj: ast.expr) -> bool:
    """True when the changed object was reached through indexing a container (``d[0]``)."""
    while isinstance(obj, ast.Attribute):
        obj = obj.value
    return isinstance(obj, ast.Subscript) and isinstance(
        obj.value, (ast.Name, ast.Subscript)
    ) and not looks_like_column(obj)

def looks_like_column(obj: ast.Subscript) -> bool:
    """``x["name"]``: a column of a frame (its changes are the frame's)."""
    # df["col"].fillna(…, inplace=True) changes df's column: the root is df, not an alias.
    return isinstance(obj.slice, ast.Constant) and isinstance(obj.slice.value, str)

def is_globals_call(node: ast.expr) -> bool:
    """``globals()`` or ``locals()``: names set through them cannot be listed."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("globals", "vars", "locals")
        and not node.args
    )

def value_origin(value: ast.expr) -> tuple[str | None, str | None]:
    """(the dotted function that made ``value``, or the name it is taken from)."""
    if isinstance(value, ast.GeneratorExp):
        return "<generator>", None
    if isinstance(value, ast.Call):
        return dotted_name(value.func) or None, None
    if isinstance(value, ast.Name):
        return None, value.id
    return None, None

def held_names(value: ast.expr) -> tuple[str, ...]:
    """Names whose objects a value holds itself: ``[a, b]``, ``{"k": a}``, ``(a, b)``, ``a``.

    The new name and those share objects: a later step that reads both must get them from
    one step, so that a change through one shows through the other, as in the notebook.
    """
    if isinstance(value, ast.Name):
        return (value.id,)
    elements: list[ast.expr] = []
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        elements = list(value.elts)
    elif isinstance(value, ast.Dict):
        elements = [v for v in value.values if v is not None]
    names: list[str] = []
    for element in elements:
        inner = element.value if isinstance(element, ast.Starred) else element
        if isinstance(inner, ast.Name):
            names.append(inner.id)
    return tuple(dict.fromkeys(names))

def path_value(value: ast.expr) -> tuple[object, ...] | None:
    """The path template of a value built like a path, else None.

    A literal string, an f-string, ``os.path.join``, ``Path(…)``, ``… / …``.
    """
    if isinstance(value, ast.Name):
        return None  # an alias: linking follows the name itself
    if isinstance(value, ast.Constant) and not isinstance(value.value, str):
        return None
    template = path_template(value)
    if template is None or not any(isinstance(part, str) and part for part in template):
        return None
    return template
