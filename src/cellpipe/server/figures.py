"""A step's figures for the panel: the PNG images its cells displayed, read from its report.

A step's report (``report.ipynb`` in its directory of the run) is the step's cells as they
ran, outputs included; every ``image/png`` output in it is one figure, numbered from 1 in
the order the cells displayed them (the numbering of ``figure-N.png`` on the clusters).

``GET /cellpipe/runs/<id>/steps/<step>/figures?path=NB`` lists them (cell, size in bytes,
width and height in pixels); ``…/figures/<n>.png`` answers one as an image.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from cellpipe import api
from cellpipe.server.base import RequestError, maps_errors
from cellpipe.server.handlers import StepFileHandler

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Figure:
    """One PNG image a step's cell displayed.

    Attributes:
        number: Its place among the step's figures, from 1.
        cell: The 0-based index of the notebook cell that displayed it (-1 if unknown).
        data: The PNG bytes.
    """

    number: int
    cell: int
    data: bytes

    def to_dict(self) -> dict[str, Any]:
        """What the list route answers for it."""
        width, height = png_size(self.data)
        return {"number": self.number, "cell": self.cell, "size": len(self.data),
                "width": width, "height": height}


def png_size(data: bytes) -> tuple[int | None, int | None]:
    """The width and height of a PNG image, from its header; None when it is not one."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None, None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def report_figures(report: Path) -> list[Figure]:
    """The figures of the executed report ``report`` (``report.ipynb``), in order.

    Raises:
        RequestError: 500 when the report is not a notebook (it was cut short, say).
    """
    try:
        content = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(500, f"the step's report {report.name} cannot be read: {exc}",
                           hint="run the step again to write a new report") from exc
    figures: list[Figure] = []
    for cell in content.get("cells", []) if isinstance(content, dict) else []:
        meta = (cell.get("metadata") or {}).get("cellpipe") or {}
        index = meta.get("cell", -1) if isinstance(meta, dict) else -1
        for output in cell.get("outputs") or []:
            data = (output.get("data") or {}).get("image/png") if isinstance(output, dict) else None
            if not data:
                continue
            text = "".join(data) if isinstance(data, list) else str(data)
            try:
                image = base64.b64decode(text.replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                continue  # not base64: not an image a browser could show either
            figures.append(Figure(len(figures) + 1, index if isinstance(index, int) else -1,
                                  image))
    return figures


class StepFiguresHandler(StepFileHandler):
    """``GET /cellpipe/runs/<id>/steps/<step>/figures?path=NB``: the step's figures."""

    def figures(self, run_id: str, step: str) -> list[Figure]:
        """The step's figures; 404 while it has no report."""
        report = api.StepLayout(self.step_dir(run_id, step)).report
        if not report.is_file():
            raise RequestError(404, f"step {step!r} has no report yet",
                               hint="its figures are read from its report, written when "
                               "the step ends")
        return report_figures(report)

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, run_id: str, step: str) -> None:
        """The list: number, cell, size and pixel size of each figure."""
        figures = await asyncio.to_thread(self.figures, run_id, step)
        self.reply({"run": run_id, "step": step,
                    "figures": [figure.to_dict() for figure in figures]})


class StepFigureHandler(StepFiguresHandler):
    """``GET /cellpipe/runs/<id>/steps/<step>/figures/<n>.png?path=NB``: one figure."""

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, run_id: str, step: str, number: str) -> None:
        """The PNG image; 404 for a number the step does not have."""
        figures = await asyncio.to_thread(self.figures, run_id, step)
        wanted = int(number)
        if not 1 <= wanted <= len(figures):
            raise RequestError(404, f"step {step!r} has no figure {wanted}",
                               hint=f"it has {len(figures)} figure(s), numbered from 1"
                               if figures else "it displayed no figures")
        self.set_header("Cache-Control", "private, max-age=3600")  # a run's report is final
        self.finish(figures[wanted - 1].data, set_content_type="image/png")
