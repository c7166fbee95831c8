"""Engines and targets are plugins: a package adds one with an entry point, and every
front end (the api, the CLI, the server's list) finds it with no change to cellpipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.plugins import ENGINES, TARGETS
from tests.conftest import write_nb

ROOT = Path(__file__).resolve().parents[2]


def install_example(site: Path) -> Path:
    """A distribution on ``site`` whose entry points name the example plugins."""
    info = site / "cellpipe_example-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cellpipe-example\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[cellpipe.targets]\nfolder = tests.plugins.example_plugins:FolderTarget\n\n"
        "[cellpipe.engines]\nnamed-local = tests.plugins.example_plugins:NamedLocalEngine\n",
        encoding="utf-8")
    return site


@pytest.fixture
def example(tmp_path, monkeypatch):
    site = install_example(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    for registry in (ENGINES, TARGETS):
        registry.reset()
    yield site
    for registry in (ENGINES, TARGETS):
        registry.reset()


def _notebook(tmp_path: Path) -> Path:
    return write_nb(tmp_path, ("step:load", "data = [1, 2, 3]"),
                    ("step:total", "total = sum(data)"))


def test_a_registered_target_compiles_submits_and_reports_through_the_api(example, tmp_path):
    assert api.target_names() == ["spec", "argo", "kfp", "katib", "folder"]
    assert api.cluster_target_names() == ["argo", "kfp", "katib", "folder"]
    path = _notebook(tmp_path)
    images = {"load": "reg/load:1", "total": "reg/total:1"}
    plan = json.loads(api.compile_target(path, "folder", images=images, namespace="ml"))
    assert plan["namespace"] == "ml"
    assert plan["steps"] == [{"name": "load", "image": "reg/load:1", "after": []},
                             {"name": "total", "image": "reg/total:1", "after": ["load"]}]
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    done = api.submit(path, "folder", connection={"host": str(cluster)}, images=images,
                      watch=True)
    name = done.name
    assert done.status == "Succeeded" and (cluster / f"{name}.json").is_file()
    status = api.target_status("folder", name, host=str(cluster))
    assert (status.name, status.phase, status.done) == (name, "Succeeded", True)
    assert api.target_exit_code("folder", "Succeeded") == 0


def test_a_registered_engine_runs_a_notebook(example, tmp_path):
    assert api.engine_names() == ["local", "docker", "named-local"]
    run = api.run(_notebook(tmp_path), engine="named-local")
    assert run.status == "succeeded" and run.load("total") == 6


def test_an_unknown_name_lists_the_plugins_and_suggests_the_nearest(example, tmp_path):
    with pytest.raises(CellpipeError, match="unknown target 'foldr'") as caught:
        api.compile_target(_notebook(tmp_path), "foldr", images={})
    assert caught.value.hint == "did you mean 'folder'?"
    with pytest.raises(CellpipeError, match="unknown engine 'k8s'") as caught:
        api.run(_notebook(tmp_path), engine="k8s")
    assert "local or docker or named-local" in caught.value.hint


def test_a_broken_plugin_is_named_in_the_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cellpipe.targets]\nbad = no_such_module:X\n")
    monkeypatch.syspath_prepend(str(site))
    TARGETS.reset()
    try:
        with pytest.raises(CellpipeError, match=r"the target plugin 'bad' \(no_such_module:X\) "
                                                "cannot be loaded: ModuleNotFoundError"):
            api.load_target("bad")
        # what reaches each cluster (the panel's form) is still listed, without it
        with pytest.warns(RuntimeWarning, match="target 'bad' left out: the target plugin"):
            assert list(api.target_connections()) == ["argo", "kfp", "katib"]
    finally:
        TARGETS.reset()


def test_the_cli_compiles_and_submits_for_a_registered_target(tmp_path):
    site = install_example(tmp_path / "site")
    path = _notebook(tmp_path)
    (tmp_path / "images.json").write_text(json.dumps({"load": "r/l:1", "total": "r/t:1"}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    cli = [sys.executable, "-m", "cellpipe"]
    done = subprocess.run([*cli, "compile", str(path), "--target", "folder", "--images",
                           str(tmp_path / "images.json")], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"][1]["after"] == ["load"]
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    done = subprocess.run([*cli, "submit", str(path), "--target", "folder", "--host",
                           str(cluster), "--images", str(tmp_path / "images.json")],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("folder run ") and len(list(cluster.glob("*.json"))) == 1
    wrong = subprocess.run([*cli, "compile", str(path), "--target", "foldr"],
                           capture_output=True, text=True, env=env, check=False)
    assert wrong.returncode != 0 and "did you mean 'folder'?" in wrong.stderr


def test_status_and_logs_are_the_same_commands_for_every_target(tmp_path):
    """`status` and `logs --target` ask the target's protocol, with the connection fields
    the target declares; a required field missing is a usage error before anything runs."""
    site = install_example(tmp_path / "site")
    path = _notebook(tmp_path)
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cellpipe", *args], capture_output=True,
                              text=True, env=env, check=False)

    images = tmp_path / "images.json"
    images.write_text(json.dumps({"load": "r/l:1", "total": "r/t:1"}))
    done = cli("submit", str(path), "--target", "folder", "--host", str(cluster),
               "--images", str(images))
    assert done.returncode == 0, done.stderr
    name = done.stdout.split(":")[0].removeprefix("folder run ")
    assert f"cellpipe status {name} --target folder --host {cluster}" in done.stdout
    status = cli("status", name, "--target", "folder", "--host", str(cluster))
    assert (status.returncode, status.stdout) == (0, f"folder run {name}: Succeeded\n")
    missing = cli("status", "nope", "--target", "folder", "--host", str(cluster))
    assert missing.returncode == 0 and "Unknown (no " in missing.stdout  # not ended: exit 0
    logs = cli("logs", name, "load", "--target", "folder", "--host", str(cluster))
    assert (logs.returncode, logs.stdout) == (0, f"{name}/load: nothing printed\n")
    no_host = cli("status", "3f0c2a9e", "--target", "kfp")
    assert no_host.returncode == 2 and "--target kfp needs --host" in no_host.stderr


def test_a_plugin_answering_its_status_as_text_is_read_as_its_phase(example, tmp_path,
                                                                      monkeypatch):
    from tests.plugins.example_plugins import FolderTarget

    monkeypatch.setattr(FolderTarget, "status", lambda self, name, connection: "Running")
    running = api.target_status("folder", "x", host=str(tmp_path))
    assert (running.phase, running.done) == ("Running", False)
    monkeypatch.setattr(FolderTarget, "status", lambda self, name, connection: "Failed")
    assert api.target_status("folder", "x", host=str(tmp_path)).done


def test_a_target_without_schedules_is_refused_clearly(example, tmp_path):
    """The example target has no schedule methods: the api says so, and names who can."""
    path = _notebook(tmp_path)
    for call in (lambda: api.schedule(path, "folder", cron="0 3 * * *",
                                      images={"load": "r/l:1", "total": "r/t:1"},
                                      connection={"host": str(tmp_path)}),
                 lambda: api.list_schedules("folder", host=str(tmp_path)),
                 lambda: api.unschedule("folder", "x", host=str(tmp_path))):
        with pytest.raises(CellpipeError, match="target 'folder' cannot schedule runs") as info:
            call()
        assert "argo or kfp" in str(info.value.hint)
        assert "cellpipe submit" in str(info.value.hint)
    assert not list(tmp_path.glob("*.json"))  # nothing was submitted instead
    site = install_example(tmp_path / "cli-site")
    done = subprocess.run(
        [sys.executable, "-m", "cellpipe", "schedule", "--list", "--target", "folder"],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)])))
    assert done.returncode == 2 and "cannot schedule runs" in done.stderr, done.stderr
