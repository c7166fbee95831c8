"""Reading notebooks into immutable values, with clear errors for files that are not one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpipe.errors import NotebookReadError


@dataclass(frozen=True)
class Cell:
    """One cell as cellpipe sees it.

    Attributes:
        index: 0-based position in the notebook.
        id: The nbformat cell id, or ``cell-<index>`` for notebooks older than 4.5.
        cell_type: ``code``, ``markdown`` or ``raw``.
        source: The cell's text.
        tags: ``metadata.tags`` in order.
    """

    index: int
    id: str
    cell_type: str
    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notebook:
    """A notebook read from disk or memory.

    Attributes:
        path: Where it came from (as given), or ``<memory>``.
        cells: All cells in order.
        metadata: Notebook metadata (kernelspec, ``kubeflow_notebook`` settings, …).
    """

    path: str
    cells: tuple[Cell, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The notebook's file stem (``train`` for ``train.ipynb``)."""
        return Path(self.path).stem if self.path != "<memory>" else "notebook"


# What the API takes as a notebook: a path, a read Notebook, or its nbformat JSON data.
NotebookLike = str | Path | Notebook | Mapping[str, Any]


def read_notebook(path: str | Path) -> Notebook:
    """Read an .ipynb file (any nbformat version, upgraded to v4).

    Raises:
        NotebookReadError: the file is missing, not JSON, not a notebook, or its kernel
            is not Python.
    """
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotebookReadError("no such file", path=shown, hint="check the path") from None
    except IsADirectoryError:
        raise NotebookReadError("is a directory, not a notebook", path=shown) from None
    except UnicodeDecodeError as exc:
        raise NotebookReadError(f"is not UTF-8 text ({exc.reason})", path=shown) from exc
    return notebook_from_text(text, path=shown)


def notebook_from_text(text: str, path: str = "<memory>") -> Notebook:
    """Parse notebook JSON text; see :func:`read_notebook`."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookReadError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            path=path,
            hint="an .ipynb file is JSON; was it saved while being edited, or is it a script?",
        ) from exc
    return notebook_from_dict(raw, path=path)


def notebook_from_dict(raw: Any, path: str = "<memory>") -> Notebook:
    """Build a :class:`Notebook` from a parsed notebook (a dict or an nbformat node)."""
    if not isinstance(raw, dict) or not ("cells" in raw or "worksheets" in raw):
        raise NotebookReadError(
            "is JSON but not a Jupyter notebook (no 'cells')",
            path=path,
            hint="pass an .ipynb file",
        )
    try:
        major = int(raw.get("nbformat", 4))
        # Version 4 is read as the JSON it is; nbformat (and the schema library it loads,
        # ~2 s to import with some of its optional packages) only upgrades older notebooks.
        node = raw if major == 4 else _upgrade(raw)
    except Exception as exc:
        raise NotebookReadError(
            f"cannot be read as a notebook: {exc}", path=path, hint="open and re-save it in Jupyter"
        ) from exc
    if not isinstance(node.get("cells", []), list) or not all(
            isinstance(c, dict) for c in node.get("cells", [])):
        raise NotebookReadError("its 'cells' is not a list of cells", path=path,
                                hint="open and re-save it in Jupyter")
    metadata = dict(node.get("metadata", {}))
    _check_python(metadata, path)
    cells = []
    for index, cell in enumerate(node.get("cells", [])):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = cell.get("metadata", {}).get("tags", []) or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise NotebookReadError(
                "metadata.tags must be a list of strings", path=path, cell=index
            )
        cells.append(
            Cell(
                index=index,
                id=str(cell.get("id") or f"cell-{index}"),
                cell_type=str(cell.get("cell_type", "code")),
                source=source,
                tags=tuple(t.strip() for t in tags if t.strip()),
            )
        )
    return Notebook(path=path, cells=tuple(cells), metadata=metadata)


def _upgrade(raw: dict[str, Any]) -> Any:
    import nbformat

    return nbformat.convert(nbformat.from_dict(raw), 4)


def _check_python(metadata: Mapping[str, Any], path: str) -> None:
    kernelspec = metadata.get("kernelspec") or {}
    language = kernelspec.get("language") or (metadata.get("language_info") or {}).get("name")
    if language and str(language).lower() not in {"python", "python3", "ipython"}:
        name = kernelspec.get("display_name") or kernelspec.get("name") or language
        raise NotebookReadError(
            f"uses a {language} kernel ({name}); cellpipe pipelines run Python notebooks",
            path=path,
            hint="switch the notebook's kernel to Python 3",
        )
