"""``cellpipe compare`` reads the run record, which the docker engine writes as the local
engine does: a run in containers compares with a local run (real daemon, real images)."""

from __future__ import annotations

import json

import pytest

import cellpipe
from cellpipe import api
from tests.conftest import write_nb
from tests.engines.docker.test_docker_engine import TINY

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_docker_run_compares_with_a_local_run(tmp_path, docker_env):
    path = write_nb(tmp_path, *TINY)
    root = tmp_path / ".cellpipe"
    local = api.run(path, {"n": 7}, root=root)
    docker = api.run(path, {"n": 3}, root=root, engine="docker")
    again = api.run(path, {"n": 3}, root=root, engine="docker")
    assert docker.status == again.status == "succeeded", json.dumps(docker.steps, indent=1)

    comparison = cellpipe.compare([local.id, docker.id, again.id], root=root)

    assert [r["engine"] for r in comparison.to_dict()["runs"]] == ["local", "docker", "docker"]
    assert comparison.parameters == {"n": [7, 3, 3]}
    assert comparison.same_parameters == {"scale": 2.0}
    assert comparison.metrics == {"total": [42.0, 6.0, 6.0]}
    assert comparison.change("total") == [None, -36.0, -36.0]
    make = comparison.steps["make"]
    assert make[0]["ran"] and make[1]["ran"]
    assert make[1]["reason"] == docker.steps["make"]["reason"]
    assert make[1]["changed_outputs"] == ["values"]
    # the unchanged docker rerun came from the cache of the first docker run
    assert make[2]["cached"] and make[2]["cached_from"] == docker.id
    assert comparison.steps["total"][2]["cached_from"] == docker.id
    assert comparison.plot(tmp_path / "docker.png").stat().st_size > 10_000
