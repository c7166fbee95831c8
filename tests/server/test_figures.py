"""GET /cellpipe/runs/<id>/steps/<step>/figures and …/figures/<n>.png, through a real
Jupyter server: a real local run whose step draws two matplotlib figures."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from cellpipe.server.figures import PNG_SIGNATURE, png_size, report_figures
from tests.conftest import write_nb
from tests.server.test_api_schema import check
from tests.server.test_handlers import finished

DRAWING = (
    ("step:load", "values = [3, 1, 2]"),
    ("step:plot", "import matplotlib.pyplot as plt\n"
                  "plt.figure(figsize=(4, 1.5)); plt.plot(values); plt.show()\n"
                  "plt.figure(figsize=(1.5, 4)); plt.bar([0, 1, 2], values); plt.show()\n"
                  "peak = max(values)"),
    ("step:after", "double = peak * 2"),
)


async def drawn(jp_fetch: Any, jp_root_dir: Path) -> tuple[Any, str]:
    """Run the drawing notebook to its end: (fetch, run id)."""
    write_nb(jp_root_dir, *DRAWING, name="drawing.ipynb")

    async def fetch(*parts: str, **params: Any) -> tuple[int, str, bytes]:
        response = await jp_fetch("cellpipe", *parts, params={"path": "drawing.ipynb", **params},
                                  raise_error=False)
        return response.code, response.headers.get("Content-Type", ""), response.body

    response = await jp_fetch("cellpipe", "runs", method="POST",
                              body=json.dumps({"path": "drawing.ipynb"}))
    run_id = json.loads(response.body)["id"]

    async def answer(*parts: str, **kwargs: Any) -> tuple[int, Any]:
        code, kind, body = await fetch(*parts, **(kwargs.get("params") or {}))
        return code, json.loads(body) if kind.startswith("application/json") else body

    run = await finished(answer, run_id, "drawing.ipynb", timeout=180)
    assert run["status"] == "succeeded", run
    return fetch, run_id


async def test_a_steps_figures_are_listed_and_served_as_png_and_bad_ones_are_404(
        jp_fetch, jp_root_dir):
    fetch, run_id = await drawn(jp_fetch, jp_root_dir)

    code, kind, body = await fetch("runs", run_id, "steps", "plot", "figures")
    assert code == 200 and kind.startswith("application/json")
    listed = check(json.loads(body), "Figures")
    assert listed["run"] == run_id and listed["step"] == "plot"
    figures = listed["figures"]
    assert [f["number"] for f in figures] == [1, 2]
    assert {f["cell"] for f in figures} == {1}  # the second cell of the notebook drew both
    # 4x1.5 and 1.5x4 inches: the first is wider than high, the second higher than wide
    first, second = figures
    assert first["width"] > first["height"] and second["width"] < second["height"]

    code, kind, image = await fetch("runs", run_id, "steps", "plot", "figures", "2.png")
    assert (code, kind) == (200, "image/png")
    assert image.startswith(PNG_SIGNATURE) and len(image) == second["size"]
    assert png_size(image) == (second["width"], second["height"])

    # a step that drew nothing has an empty list
    code, _, body = await fetch("runs", run_id, "steps", "load", "figures")
    assert code == 200 and json.loads(body)["figures"] == []

    # figures that do not exist: 404 saying what there is
    code, _, body = await fetch("runs", run_id, "steps", "plot", "figures", "3.png")
    error = check(json.loads(body), "ErrorBody")
    assert code == 404
    assert error["message"] == "step 'plot' has no figure 3"
    assert error["hint"] == "it has 2 figure(s), numbered from 1"

    code, _, body = await fetch("runs", run_id, "steps", "plott", "figures")
    assert code == 404
    error = json.loads(body)
    assert error["message"] == f"run {run_id} has no step 'plott'"
    assert "plot" in error["hint"]

    code, _, body = await fetch("runs", "nosuchrun", "steps", "plot", "figures")
    assert code == 404 and "nosuchrun" in json.loads(body)["message"]

    code, _, body = await fetch("runs", run_id, "steps", "plot", "figures", "0.png")
    assert code == 404 and json.loads(body)["message"] == "step 'plot' has no figure 0"
    code, _, _ = await fetch("runs", run_id, "steps", "plot", "figures", "one.png")
    assert code == 404  # no such route

    # a notebook outside the server's root is refused before any run is looked up
    code, _, body = await fetch("runs", run_id, "steps", "plot", "figures",
                                path="../drawing.ipynb")
    assert code == 403 and "leaves the server's root" in json.loads(body)["message"]


async def test_the_figures_need_the_token(jp_fetch):
    for parts in (("figures",), ("figures", "1.png")):
        response = await jp_fetch("cellpipe", "runs", "latest", "steps", "plot", *parts,
                                  params={"path": "drawing.ipynb"},
                                  headers={"Authorization": ""}, raise_error=False)
        assert response.code == 403


def _png(width: int, height: int) -> bytes:
    return PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)


def test_a_report_cut_short_or_with_odd_outputs(tmp_path):
    import base64

    report = tmp_path / "report.ipynb"
    good = base64.b64encode(_png(4, 3)).decode()
    report.write_text(json.dumps({"cells": [
        {"metadata": {"cellpipe": {"cell": 7}}, "outputs": [
            {"data": {"image/png": [good[:10], good[10:]]}},  # split in lines, as nbformat may
            {"data": {"image/png": "not base64!"}},
            {"data": {"text/plain": "x"}}]},
        {"metadata": {}, "outputs": [{"data": {"image/png": good}}]}]}))

    figures = report_figures(report)
    assert [(f.number, f.cell, png_size(f.data)) for f in figures] == [(1, 7, (4, 3)),
                                                                        (2, -1, (4, 3))]
    assert png_size(b"GIF89a") == (None, None)

    report.write_text('{"cells": [')
    with pytest.raises(Exception, match="cannot be read") as caught:
        report_figures(report)
    assert caught.value.status == 500  # type: ignore[attr-defined]
