"""The warm server that forks steps: kept between CLI runs of one environment and module
set, never reused for another, never holding a notebook's own modules, gone when idle or
when its environment changes, and taking a step with it when its client dies.

Every test runs `cellpipe run` as a new process (what a user does twice in a shell) with
its own marker variable, so its servers are its own; a step reports `os.getppid()`, the
process that forked it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cellpipe import api
from tests.conftest import write_nb


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CELLPIPE_WARM_IDLE="30", CELLPIPE_TEST_MARK=uuid.uuid4().hex)
    env.update(extra)
    return env


def _cli_run(path: Path, env: dict[str, str], *args: str) -> api.Run:
    done = subprocess.run([sys.executable, "-m", "cellpipe", "run", str(path), "--no-cache",
                           *args], capture_output=True, text=True, env=env, timeout=180,
                          check=False, cwd=path.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("run ", 1)[1].split()[0]
    return api.open_run(run_id, path.parent / ".cellpipe")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is gone for our purposes: it only waits for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_second_cli_run_forks_its_steps_from_the_server_the_first_run_started(tmp_path):
    path = write_nb(tmp_path,
                    ("step:load", "import os, json\nserver = os.getppid()\nn = 4"),
                    ("step:use", "again = os.getppid()\ntotal = n * 3"))
    env = _env()
    first = _cli_run(path, env)
    second = _cli_run(path, env)
    server = first.load("server")
    assert first.load("again") == server  # every step of a run forks from one server
    assert second.load("server") == server  # and the next run finds it alive
    assert second.load("total") == 12
    assert _alive(server)
    command = Path(f"/proc/{server}/cmdline").read_bytes()
    assert b"cellpipe.engines.local.warm_server" in command


def test_a_different_module_set_or_environment_gets_its_own_server(tmp_path):
    one = write_nb(tmp_path, ("step:a", "import os, json\nserver = os.getppid()"))
    two = write_nb(tmp_path, ("step:a", "import os, csv\nserver = os.getppid()"),
                   name="two.ipynb")
    env = _env()
    first = _cli_run(one, env).load("server")
    assert _cli_run(two, env).load("server") != first  # csv is not preloaded for `one`
    changed = _cli_run(one, dict(env, SOME_SETTING="2")).load("server")
    assert changed != first  # a module could read SOME_SETTING when it is imported
    assert _cli_run(one, env).load("server") == first


def test_the_step_sees_the_environment_of_the_run_that_asked_for_it(tmp_path, monkeypatch):
    """In one process (a kernel, the server extension), a variable set between runs."""
    path = write_nb(tmp_path, ("step:a", "import os\nseen = os.environ.get('CP_SEEN')\n"
                                         "server = os.getppid()"))
    monkeypatch.setenv("CELLPIPE_TEST_MARK", uuid.uuid4().hex)
    monkeypatch.setenv("CP_SEEN", "one")
    first = api.run(path, cache=False)
    assert first.load("seen") == "one"
    monkeypatch.setenv("CP_SEEN", "two")
    second = api.run(path, cache=False)
    assert second.load("seen") == "two"
    assert second.load("server") != first.load("server")
    third = api.run(path, cache=False)  # the magics' second %cellpipe run: the same server
    assert third.load("server") == second.load("server") != os.getpid()


def test_an_edited_module_beside_the_notebook_is_never_stale(tmp_path):
    """The server preloads installed modules only: `helpers` is imported by each step."""
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return x * 2\n")
    path = write_nb(tmp_path, ("step:a", "import os\nimport helpers\nserver = os.getppid()\n"
                                         "value = helpers.scale(5)"))
    env = _env()
    first = _cli_run(path, env)
    assert first.load("value") == 10
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return x * 3\n")
    second = _cli_run(path, env)
    assert second.load("server") == first.load("server")  # the same warm server
    assert second.load("value") == 15

    from cellpipe.engines.local.warm import preload_modules

    modules = preload_modules(["import os\nimport helpers\nimport numpy.linalg"], tmp_path)
    assert "helpers" not in modules and "numpy.linalg" in modules and "os" in modules


def test_the_server_exits_when_idle_and_removes_its_socket(tmp_path):
    """Other processes of this user may run servers too: the socket is found by asking
    each server its pid (the folder is shared)."""
    import json
    import socket

    from cellpipe.engines.local.warm import read_line, server_folder

    def pid_at(path: Path) -> int | None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            conn.sendall(b'{"op": "ping"}\n')
            line = read_line(conn, 2.0)
            return int(json.loads(line)["pid"]) if line else None
        except OSError:
            return None
        finally:
            conn.close()

    path = write_nb(tmp_path, ("step:a", "import os\nserver = os.getppid()"))
    server = _cli_run(path, _env(CELLPIPE_WARM_IDLE="2")).load("server")
    mine = [s for s in server_folder().glob("*.sock") if pid_at(s) == server]
    assert len(mine) == 1
    assert _wait_gone(server, 20), "the idle server is still running"
    assert not mine[0].exists()


def test_the_server_stops_when_a_distribution_is_installed_in_its_environment(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "first-1.0.dist-info").mkdir()  # a folder of installed distributions on the path
    env = _env(PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    path = write_nb(tmp_path, ("step:a", "import os\nserver = os.getppid()"))
    server = _cli_run(path, env).load("server")
    time.sleep(0.05)
    (site / "second-1.0.dist-info").mkdir()  # what `pip install` does to the folder
    assert _cli_run(path, env).load("server") != server
    assert _wait_gone(server, 20), "the server of the old environment is still running"


def test_a_killed_run_takes_its_running_step_with_it(tmp_path):
    path = write_nb(tmp_path, ("step:slow", "import os, time\n"
                                            "open('pid', 'w').write(str(os.getpid()))\n"
                                            "time.sleep(120)\nz = 1"))
    proc = subprocess.Popen([sys.executable, "-m", "cellpipe", "run", str(path)],
                            cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pid_file = tmp_path / "pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    step = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert _wait_gone(step, 10), "the step outlived the run that started it"


def test_cellpipe_servers_lists_the_warm_servers_and_stops_them(tmp_path):
    path = write_nb(tmp_path, ("step:a", "import os\nserver = os.getppid()"))
    env = _env()
    server = _cli_run(path, env).load("server")
    cli = [sys.executable, "-m", "cellpipe", "servers"]
    listed = subprocess.run(cli, capture_output=True, text=True, env=env, check=True)
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [str(server), "0"] in [row[:2] for row in rows], listed.stdout
    stopped = subprocess.run([*cli, "--stop"], capture_output=True, text=True, env=env,
                             check=True)
    assert stopped.stdout.startswith("asked ")
    assert _wait_gone(server, 20), "the server did not exit when asked"


def test_a_step_whose_server_dies_fails_saying_so_and_is_stopped(tmp_path, monkeypatch):
    """The step kills the server that forked it, then would run on for a minute."""
    monkeypatch.setenv("CELLPIPE_TEST_MARK", uuid.uuid4().hex)
    path = write_nb(tmp_path, ("step:doomed", "import os, signal, time\n"
                                               "open('pid', 'w').write(str(os.getpid()))\n"
                                               "os.kill(os.getppid(), signal.SIGKILL)\n"
                                               "time.sleep(60)\nx = 1"))
    start = time.monotonic()
    run = api.run(path, cache=False)
    assert time.monotonic() - start < 30
    assert run.status == "failed"
    message = run.steps["doomed"]["error"]["message"]
    assert "the warm server that forked the step ended before it" in message
    assert _wait_gone(int((tmp_path / "pid").read_text()), 10)
