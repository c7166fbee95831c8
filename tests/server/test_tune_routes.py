"""The tuning routes, through a real Jupyter server (pytest-jupyter's jp_fetch).

A study started by POST /cellpipe/tune is a real Optuna study whose trials are real local
runs of a tiny notebook; its trials are followed through the long poll the panel uses, and
each answer is checked against the schema entry of its route.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_nb
from tests.server.test_api_schema import check

pytest.importorskip("optuna", reason="optuna is installed by `.[test]`")

# a quadratic with its minimum at x = 2: no libraries, so a trial is quick
QUADRATIC = (
    ("parameters", "x = 0.0\nlabel = 'a'"),
    ("step:prepare", "offset = 2.0"),
    ("step:evaluate", "value = (x - offset) ** 2"),
    ("metrics", "loss = value"),
)
# each trial takes a while: a study to stop halfway
SLOW = (
    ("parameters", "x = 0.0"),
    ("step:evaluate", "import time\ntime.sleep(3)\nvalue = x * 2"),
    ("metrics", "score = value"),
)


@pytest.fixture
def answer(jp_fetch):
    """``(status, JSON body, headers)`` of a request to a cellpipe route; errors don't raise."""

    async def call(*parts: str, method: str = "GET", body: Any = None,
                   params: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
        kwargs: dict[str, Any] = {}
        if body is not None or method == "POST":
            kwargs["body"] = body if isinstance(body, str) else json.dumps(body or {})
        response = await jp_fetch("cellpipe", *parts, method=method, params=params or {},
                                  raise_error=False, **kwargs)
        assert response.headers["Content-Type"].startswith("application/json"), response.body
        return response.code, json.loads(response.body), response.headers

    return call


@pytest.fixture
def quadratic(jp_root_dir: Path) -> str:
    write_nb(jp_root_dir, *QUADRATIC, name="quadratic.ipynb")
    return "quadratic.ipynb"


async def followed(answer, study: str, path: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Every state GET /cellpipe/tune/<study> answers, long-polled until it is not live."""
    deadline = time.monotonic() + timeout
    params: dict[str, Any] = {"path": path, "wait": 10}
    states = []
    while True:
        code, state, _ = await answer("tune", study, params=params)
        assert code == 200, state
        states.append(check(state, "StudyState"))
        if not state["live"]:
            return states
        assert time.monotonic() < deadline, state
        params["since"] = state["version"]


async def test_a_study_started_its_trials_arriving_and_the_best_run(answer, quadratic):
    code, started, headers = await answer(
        "tune", method="POST", params={"path": quadratic},
        body={"objective": "loss", "direction": "minimize", "trials": 4, "sampler": "random",
              "seed": 3, "space": {"x": "uniform(0, 4)", "label": "choice(a, b)"}})
    assert code == 202, started
    name = check(started, "TuneStarted")["study"]
    assert name.startswith("quadratic-loss-")
    assert headers["Location"].endswith(f"/cellpipe/tune/{name}?path=quadratic.ipynb")

    states = await followed(answer, name, quadratic)
    final = states[-1]
    assert final["settings"] == {"objective": "loss", "direction": "minimize",
                                 "space": {"x": "uniform(0, 4)", "label": "choice(a, b)"},
                                 "sampler": "random", "seed": 3, "trials": 4}
    # the trials arrived one by one while the study ran
    assert any(0 < len(s["trials"]) < 4 for s in states[:-1]), [len(s["trials"]) for s in states]
    assert any(t["state"] == "RUNNING" for s in states for t in s["trials"])
    trials = final["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert all(t["state"] == "COMPLETE" and t["run"] for t in trials), trials
    for trial in trials:
        assert trial["value"] == pytest.approx((trial["params"]["x"] - 2) ** 2)
        assert trial["params"]["label"] in ("a", "b")
    best = min(trials, key=lambda t: t["value"])
    assert final["best"] == {"number": best["number"], "params": best["params"],
                             "value": best["value"], "run": best["run"]}

    # the best trial's run is an ordinary run of the notebook, with the trial's values
    code, run, _ = await answer("runs", best["run"], params={"path": quadratic})
    assert code == 200 and run["status"] == "succeeded", run
    assert run["parameters"]["x"] == best["params"]["x"]
    assert run["metrics"] == {"loss": best["value"]}
    code, listed, _ = await answer("runs", params={"path": quadratic})
    assert {t["run"] for t in trials} <= {r["id"] for r in listed["runs"]}

    # an ended study answers the same without waiting; it cannot be stopped any more
    code, again, _ = await answer("tune", name, params={"path": quadratic, "wait": 5})
    assert code == 200 and again["trials"] == trials and again["live"] is False
    code, body, _ = await answer("tune", name, "cancel", method="POST",
                                 params={"path": quadratic})
    assert code == 409 and "is not running" in check(body, "ErrorBody")["message"]


GOOD = {"objective": "loss", "space": {"x": "uniform(0, 4)"}, "trials": 2}


@pytest.mark.parametrize(("body", "status", "message", "hint"), [
    ({**GOOD, "objective": "los"}, 400, "the notebook has no metric 'los' to optimize",
     "did you mean 'loss'?"),
    ({**GOOD, "space": {"x": "uniform(0)"}}, 400, "x", None),
    ({**GOOD, "space": {"nope": "uniform(0, 1)"}}, 400, "nope", None),
    ({**GOOD, "space": {"x": 3}}, 400, "the space of 'x' must be a string", None),
    ({**GOOD, "space": {}}, 400, "the search space is empty", None),
    ({"objective": "loss"}, 400, "missing field 'space'", None),
    ({**GOOD, "trials": 0}, 400, "trials must be at least 1, not 0", None),
    ({**GOOD, "trials": "4"}, 400, "field 'trials' must be a whole number", None),
    ({**GOOD, "direction": "up"}, 400, "unknown direction 'up'", None),
    ({**GOOD, "sampler": "tpee"}, 400, "unknown sampler 'tpee'", "did you mean 'tpe'?"),
    ({**GOOD, "parallel": 0}, 400, "parallel must be at least 1, not 0", None),
    ({**GOOD, "trails": 3}, 400, "unknown field 'trails'", "did you mean 'trials'?"),
    ([1, 2], 400, "the request body must be a JSON object", None),
    ("{not json", 400, "the request body is not JSON", None),
])
async def test_bad_settings_are_refused_before_anything_runs(answer, quadratic, jp_root_dir,
                                                             body, status, message, hint):
    code, error, _ = await answer("tune", method="POST", params={"path": quadratic}, body=body)
    assert code == status, error
    assert message in check(error, "ErrorBody")["message"], error
    if hint is not None:
        assert error["hint"] == hint
    assert not (jp_root_dir / ".cellpipe" / "runs").exists()  # no trial ran


async def test_an_unknown_study_or_notebook_is_a_404(answer, quadratic):
    code, body, _ = await answer("tune", "nope", params={"path": quadratic})
    assert code == 404 and "there is no study 'nope'" in check(body, "ErrorBody")["message"]
    code, body, _ = await answer("tune", "nope", "cancel", method="POST",
                                 params={"path": quadratic})
    assert code == 404, body
    code, body, _ = await answer("tune", method="POST", params={"path": "missing.ipynb"},
                                 body=GOOD)
    assert code == 404 and check(body, "ErrorBody")["message"].startswith("no notebook")


async def test_stop_ends_the_study_and_keeps_the_finished_trials(answer, jp_root_dir):
    write_nb(jp_root_dir, *SLOW, name="slow.ipynb")
    code, started, _ = await answer(
        "tune", method="POST", params={"path": "slow.ipynb"},
        body={"objective": "score", "space": {"x": "uniform(0, 1)"}, "trials": 20,
              "sampler": "random", "seed": 1})
    assert code == 202 and started["study"], started  # its first trial has started
    name = started["study"]
    code, body, _ = await answer("tune", name, "cancel", method="POST",
                                 params={"path": "slow.ipynb"})
    assert code == 202 and check(body, "StudyCancelling") == {"study": name,
                                                              "status": "cancelling"}
    final = (await followed(answer, name, "slow.ipynb", timeout=60))[-1]
    assert len(final["trials"]) == 1, final  # no trial started after the stop
    [trial] = final["trials"]
    assert trial["state"] == "FAIL" and "interrupted" in trial["reason"], trial
    assert final["best"] is None
    # its run (stopped within a fraction of its 3 s step) is recorded cancelled
    code, listed, _ = await answer("runs", params={"path": "slow.ipynb"})
    assert [run["status"] for run in listed["runs"]] == ["cancelled"], listed
    assert trial["run"] in (None, listed["runs"][0]["id"])
