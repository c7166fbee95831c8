"""Where runs are tracked: the resolution order and the metadata's forms (no server)."""

from __future__ import annotations

import pytest

from cellpipe.errors import CellpipeError
from cellpipe.tracking import (
    Tracking,
    TrackingSecret,
    resolve_cluster_tracking,
    resolve_tracking,
)


def meta(tracking):
    return {"cellpipe": {"tracking": tracking}}


def test_the_option_wins_then_the_metadata_then_the_environment():
    env = {"MLFLOW_TRACKING_URI": "http://env:5000"}
    both = meta({"uri": "http://meta:5000", "experiment": "exp"})
    assert resolve_tracking(both, "pipe", "http://opt:5000/", env) == Tracking(
        "http://opt:5000", "exp", "option")
    assert resolve_tracking(both, "pipe", None, env) == Tracking("http://meta:5000", "exp",
                                                                  "metadata")
    assert resolve_tracking({}, "pipe", None, env) == Tracking("http://env:5000", "pipe",
                                                                "environment")
    assert resolve_tracking({}, "pipe", None, {}) is None
    assert resolve_tracking(both, "pipe", False, env) is None


def test_the_experiment_is_the_metadata_s_then_the_environment_s_then_the_pipeline_s():
    env = {"MLFLOW_TRACKING_URI": "http://env:5000", "MLFLOW_EXPERIMENT_NAME": "envexp"}
    assert resolve_tracking({}, "pipe", None, env).experiment == "envexp"
    assert resolve_tracking(meta({"experiment": "m"}), "pipe", None, env).experiment == "m"
    assert resolve_tracking(meta("http://meta:5000"), "pipe", None, {}).experiment == "pipe"


def test_cluster_tracking_never_reads_the_shell_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_cluster_tracking({}, "pipe") is None
    assert resolve_cluster_tracking({}, "pipe", "http://mlflow:5000").uri == "http://mlflow:5000"


def test_secrets_are_references_by_name_and_key():
    found = resolve_tracking(meta({"uri": "http://m:5000", "secret": "creds"}), "p")
    assert found.secret == TrackingSecret("creds", (("MLFLOW_TRACKING_TOKEN", "token"),))
    found = resolve_tracking(meta({"uri": "http://m:5000", "secret": {
        "name": "creds", "username": "user", "password": "pass"}}), "p")
    assert found.secret.keys == (("MLFLOW_TRACKING_USERNAME", "user"),
                                 ("MLFLOW_TRACKING_PASSWORD", "pass"))


@pytest.mark.parametrize(("tracking", "message"), [
    (42, "a URI or a mapping"),
    ({"uri": "http://m", "experimnt": "x"}, "unknown key"),
    ({"uri": "http://m", "secret": {"name": "s", "value": "hunter2"}}, "unknown key"),
    ({"uri": "http://m", "secret": {"name": "s"}}, "names no key"),
    ({"uri": "http://m", "secret": {"name": "s", "token": "a b"}}, "no key of a Secret"),
    ({"uri": "   "}, "is no tracking URI"),
])
def test_malformed_metadata_is_named(tracking, message):
    with pytest.raises(CellpipeError, match=message) as info:
        resolve_tracking(meta(tracking), "p", None, {})
    assert "cellpipe.tracking" in str(info.value)  # names where


def test_asking_for_tracking_without_any_uri_says_where_to_give_one():
    with pytest.raises(CellpipeError, match="no tracking URI") as info:
        resolve_tracking({}, "p", True, {})
    assert "--track URI" in str(info.value)
