"""The tuning routes of the side panel: start a study, follow its trials, stop it.

``POST /cellpipe/tune?path=NB`` starts :func:`cellpipe.api.tune` in a background thread
(:mod:`cellpipe.server.studies`); ``GET /cellpipe/tune/<study>`` long-polls its state;
``POST /cellpipe/tune/<study>/cancel`` stops it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.server.base import (
    CellpipeHandler,
    RequestError,
    maps_errors,
    runs_root,
)
from cellpipe.server.handlers import MAX_WAIT
from cellpipe.server.studies import study_view


class TuneHandler(CellpipeHandler):
    """``POST /cellpipe/tune?path=NB``: start a tuning study of the notebook."""

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self) -> None:
        """Start the study in the background; answer 202 with its name once a trial started.

        The body: ``objective``, ``space`` (parameter name → range, as ``cellpipe tune -p``
        takes it), and optionally ``direction``, ``trials``, ``sampler``, ``seed`` and
        ``parallel``. The settings are checked before anything runs: a bad one is a 400
        with the error's message and hint.
        """
        notebook = self.query_notebook()
        body = self.json_body()
        body.check_known({"objective", "direction", "space", "trials", "sampler", "seed",
                          "parallel"})
        space = body.mapping("space")
        if space is None:
            raise RequestError(400, "missing field 'space' (the parameters to tune)",
                               hint='e.g. {"space": {"x": "uniform(0, 4)"}}')
        if not space:
            raise RequestError(400, "the search space is empty",
                               hint="give a range for at least one parameter")
        for name, value in space.items():
            if not isinstance(value, str):
                raise RequestError(400, f"the space of {name!r} must be a string like "
                                   f"'uniform(0, 1)', not {json.dumps(value)}")
        options: dict[str, Any] = {
            "objective": body.text("objective"), "space": space,
            "direction": body.optional_text("direction"),
            "sampler": body.optional_text("sampler"),
            "trials": whole(body.data.get("trials"), "trials"),
            "seed": whole(body.data.get("seed"), "seed"),
            "parallel": whole(body.data.get("parallel"), "parallel")}
        if options["parallel"] is None:
            options["parallel"] = 1
        study = await self.app.studies.start(notebook, runs_root(notebook), options,
                                             timeout=self.app.run_start_timeout)
        if study is None:
            self.reply({"study": None, "message": "no trial has started yet; the study goes "
                        "on"}, status=202)
            return
        self.set_header("Location", url_path_join(self.base_url, "cellpipe", "tune", study)
                        + "?" + urlencode({"path": self.query("path")}))
        self.reply({"study": study}, status=202)


def whole(value: Any, field: str) -> int | None:
    """An optional integer field of a request body."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(400, f"field {field!r} must be a whole number, not "
                           f"{json.dumps(value)}")
    return value


class StudyHandler(CellpipeHandler):
    """``GET /cellpipe/tune/<study>?path=NB[&wait=S[&since=V]]``: a study's trials so far."""

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, study: str) -> None:
        """Settings, trials, the best trial and ``live``; with ``wait``, a long poll.

        ``version`` (of a study this server runs) counts trial changes: pass it back as
        ``since`` so that a change between two polls is not missed.
        """
        root = runs_root(self.query_notebook())
        wait = self.query_number("wait", 0.0, MAX_WAIT)
        live = self.app.studies.get(study, root)
        if live is not None and wait > 0:
            since = int(self.query_number("since", live.version, float("inf")))
            await live.changed(since, wait)
        self.reply(await asyncio.to_thread(study_state, study, root, live))


def study_state(name: str, root: Path, live: Any) -> dict[str, Any]:
    """The study's view (see :func:`~cellpipe.server.studies.study_view`); 404 if none."""
    if live is not None and live.study is not None:
        return study_view(live.study, live)
    try:
        return study_view(api.open_study(name, root), live)
    except CellpipeError as exc:
        if exc.http_status >= 500:
            raise
        raise RequestError(404, exc.message, hint=exc.hint) from exc


class StudyCancelHandler(CellpipeHandler):
    """``POST /cellpipe/tune/<study>/cancel?path=NB``: stop a study this server runs.

    Answers 202 at once: no trial starts after it, the running trials' runs are cancelled
    (recorded ``FAIL``, interrupted) and the finished ones stay. 409 for a study that is
    not running here, 404 for an unknown one.
    """

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self, study: str) -> None:
        """Ask the study's session to stop; ``live`` turns false when it has."""
        root = runs_root(self.query_notebook())
        live = self.app.studies.get(study, root)
        if live is None or live.done:
            await asyncio.to_thread(study_state, study, root, None)  # 404 if there is none
            raise RequestError(409, f"study {study!r} is not running",
                               hint="only a study this server started and that is still "
                               "going can be stopped")
        live.cancel.set()
        self.reply({"study": study, "status": "cancelling"}, status=202)
