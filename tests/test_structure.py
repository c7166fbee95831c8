"""Rules of the codebase's shape that import-linter cannot state."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [ROOT / "src" / "cellpipe", ROOT / "kernel_ext" / "cellpipe_kernel"]
GENERATED = {"spec_validator.py"}


def _modules() -> list[Path]:
    return [p for package in PACKAGES for p in sorted(package.rglob("*.py"))
            if p.name not in GENERATED]


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cellpipe"):
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{a.name}"
                          for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "make these public, or keep them in their module:\n" + "\n".join(found)


def test_the_api_names_what_the_front_ends_use_with_their_types():
    """No module __getattr__: `api.run` is the function itself, so mypy checks its calls."""
    from cellpipe import api, runs_api

    assert not hasattr(api, "__getattr__")
    assert api.run is runs_api.run and api.Run is runs_api.Run


def test_no_python_module_is_over_500_lines():
    """One responsibility per module (the generated spec validator aside)."""
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"split these along their responsibilities: {long}"


def test_every_diagnostic_code_is_emitted_and_in_the_readme():
    """core.diagnostics.CODES, the codes the analysis emits and the README's table agree."""
    import re

    from cellpipe.core.diagnostics import CODES

    source = "".join(p.read_text(encoding="utf-8") for p in _modules()
                     if p.name != "diagnostics.py")
    emitted = set(re.findall(r'"(CP\d{3})"', source))
    readme = set(re.findall(r"^\| (CP\d{3}) \|", (ROOT / "README.md").read_text(), re.M))
    assert set(CODES) == emitted, (set(CODES) ^ emitted)
    assert set(CODES) == readme, (set(CODES) ^ readme)


PANEL_SOURCES = ROOT / "labextension" / "src"
PANEL_GENERATED = PANEL_SOURCES / "generated"  # written by `jlpm build:types`


def _panel_modules() -> list[Path]:
    return [p for p in sorted(PANEL_SOURCES.rglob("*.ts")) if PANEL_GENERATED not in p.parents]


def test_no_typescript_file_of_the_panel_is_over_500_lines():
    """The same rule for the side panel's hand-written TypeScript (generated types aside)."""
    modules = _panel_modules()
    assert len(modules) > 5, f"no panel sources found under {PANEL_SOURCES}"
    long = {str(p.relative_to(ROOT)): n for p in modules
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"split these along their responsibilities: {long}"


def test_the_panel_knows_no_target_by_name():
    """What a target takes comes from GET /cellpipe/plugins (its declared connection);
    only the fallback for a server without that route lists the built-in ones."""
    import re

    from cellpipe.plugins import TARGETS

    fallback = PANEL_SOURCES / "destinations.ts"
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
             for p in _panel_modules() if p != fallback
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             for name in TARGETS.builtins if re.search(rf"""['"`]{name}['"`]""", line)]
    assert not found, "ask the server's declarations instead:\n" + "\n".join(found)


def test_the_front_ends_use_only_what_the_api_lists_in_all():
    """`cellpipe.api.__all__` is the surface the CLI, the server and the magics are built on."""
    import re

    from cellpipe import api

    used: dict[str, set[str]] = {}
    for folder in (ROOT / "src" / "cellpipe" / "cli", ROOT / "src" / "cellpipe" / "server",
                   ROOT / "kernel_ext" / "cellpipe_kernel"):
        for path in folder.glob("*.py"):
            for name in re.findall(r"\bapi\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8")):
                used.setdefault(name, set()).add(path.name)
    assert used, "the front ends name nothing of the api?"
    missing = {name: sorted(files) for name, files in used.items() if name not in api.__all__}
    assert not missing, f"used by the front ends but not in cellpipe.api.__all__: {missing}"
    assert all(hasattr(api, name) for name in api.__all__)
