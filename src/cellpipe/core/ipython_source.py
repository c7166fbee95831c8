"""IPython source to Python: magics, ``!`` lines and install lines, before parsing.

A cell is converted only when it is not plain Python (plain notebooks never import
IPython); ``!pip install`` lines are blanked and kept as the step's requirements.
"""

from __future__ import annotations

import ast
import re

_PIP_LINE = re.compile(r"^(\s*)[!%]\s*(?:pip3?|conda|mamba|uv\s+pip)\s+install\b(.*)$")

# ``%cellpipe run`` in a step would start the pipeline from inside itself.
_CELLPIPE_LINE = re.compile(r"^(\s*)%cellpipe\b")

# Cell magics whose body is Python run in the user namespace.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}

# Line magics whose argument is Python run in the user namespace (``%timeit f(x)``).
PYTHON_LINE_MAGICS = {"time", "timeit", "prun"}

_CELL_MAGIC = re.compile(r"^\s*%%(\w+)([^\n]*)(?:\n|$)")

def blank_installs(source: str) -> tuple[str, list[str], list[tuple[str, str, int]]]:
    """Blank ``!pip install`` lines (steps must not reach the network) and ``%cellpipe`` lines.

    Returns:
        (source with install lines replaced by ``pass``, packages named, notes).
    """
    notes: list[tuple[str, str, int]] = []
    packages: list[str] = []
    lines = source.split("\n")
    for number, text in enumerate(lines, start=1):
        control = _CELLPIPE_LINE.match(text)
        if control:
            lines[number - 1] = f"{control.group(1)}pass  # cellpipe: %cellpipe is not run in steps"
            continue
        match = _PIP_LINE.match(text)
        if match:
            args = install_arguments(match.group(2))
            packages.extend(args)
            lines[number - 1] = f"{match.group(1)}pass  # cellpipe: install line not run in steps"
            notes.append(
                (
                    "CP305",
                    f"'{text.strip()}' is environment setup: it is not run inside steps; "
                    f"{', '.join(args) or 'its packages'} join the step images' requirements",
                    number,
                )
            )
    return "\n".join(lines), packages, notes

# pip options that take a value (the value is not a package).
_PIP_VALUE_OPTIONS = frozenset({
    "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "-t", "--target", "--prefix", "--root", "--src", "--trusted-host", "--platform",
    "--python-version", "--implementation", "--abi", "--upgrade-strategy", "--progress-bar",
    "--cache-dir", "--log", "--timeout", "--retries", "--proxy", "--config-settings", "-C",
})

def install_arguments(text: str) -> list[str]:
    """The packages of an install line's arguments: quoted specs kept whole, options dropped.

    ``-r FILE`` (``--requirement FILE``) is kept as ``-r FILE``: the file is read, relative
    to the notebook, where requirements are resolved. ``-e PATH`` is kept as the path.
    """
    import shlex

    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = text.split()
    found: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        name, eq, value = word.partition("=")
        if word in ("-r", "--requirement") and index + 1 < len(words):
            found.append(f"-r {words[index + 1]}")
            index += 2
            continue
        if eq and name in ("--requirement",):
            found.append(f"-r {value}")
        elif word.startswith("-r") and len(word) > 2 and not word.startswith("-r="):
            found.append(f"-r {word[2:]}")
        elif word in ("-e", "--editable") and index + 1 < len(words):
            found.append(words[index + 1])
            index += 2
            continue
        elif word in _PIP_VALUE_OPTIONS:
            index += 2
            continue
        elif not word.startswith("-") and not word.startswith(("$", "{")):
            found.append(word)
        index += 1
    return found

def imported_modules(source: str) -> list[tuple[str, int]]:
    """Top-level modules a cell imports (absolute imports only), with line numbers, in order.

    What step images must hold and what the notebook has loaded above a step; cells with
    IPython syntax (magics, ``!cmd``) are transformed to Python first.
    """
    try:
        tree = parse(to_python(source))
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module.split(".")[0], node.lineno))
    return sorted(found, key=lambda item: item[1])

def parse(source: str) -> ast.Module:
    """Parse a cell as IPython runs it: top-level ``await`` is allowed (autoawait)."""
    tree = compile(source, "<cell>", "exec",
                   flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    return tree

def to_python(source: str) -> str:
    """Turn a cell's IPython source into Python with the same line numbers.

    Plain Python is returned as is, so notebooks without magics never import IPython.
    """
    text = source
    try:
        parse(text)
        return text
    except SyntaxError:
        pass
    magic = _CELL_MAGIC.match(text)
    if magic and magic.group(1) in _PYTHON_CELL_MAGICS:
        # Keep the body analyzable; the header line becomes a no-op with the same numbering.
        body = text[magic.end() :]
        header = "pass  # %%" + magic.group(1) + magic.group(2)
        if magic.group(1) == "capture" and magic.group(2).split():
            target = [w for w in magic.group(2).split() if not w.startswith("-")]
            if target and target[0].isidentifier():
                header = f"{target[0]} = None  # %%capture {target[0]}"
        return header + "\n" + to_python(body)
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        transformed: str = TransformerManager().transform_cell(text)
    except SyntaxError:  # IPython's tokenizer gave up (an odd dedent): Python's parse says where
        return text
    return transformed.rstrip("\n")


def magic_statements(argument: str, line: int) -> list[ast.stmt]:
    """The Python code of ``%time``/``%timeit``/``%prun`` (after their options), at ``line``."""
    words = argument.split()
    for skip in range(len(words) + 1):
        if skip and not words[0].startswith("-"):
            break
        code = argument.split(maxsplit=skip)[skip] if skip < len(words) else ""
        try:
            tree = ast.parse(code.strip())
        except SyntaxError:
            continue
        ast.increment_lineno(tree, line - 1)
        return tree.body
    return []
