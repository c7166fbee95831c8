"""The warm server: one process per environment and module set that forks every step.

It imports IPython, cellpipe's runtime and the notebook's installed modules once, builds
the step shell (``cellpipe.runtime.warm``), and then forks one process per step. It
outlives the run that started it for a short idle time (``CELLPIPE_WARM_IDLE`` seconds,
default 120), so repeated CLI runs, sweeps, the magics and the server extension start
their steps warm. It is found by a key over everything an import could depend on:

- the interpreter, ``sys.path``, the current directory and the umask;
- the environment variables (a few that change with every shell command left out);
- the installed distributions (the folders holding ``*.dist-info`` and their mtimes);
- cellpipe's own source files (their mtimes, so an edited checkout never runs stale code);
- the module set it preloads.

A server is therefore never reused for a different module set or environment. It leaves
out modules that are not installed distributions (a ``helpers.py`` beside the notebook):
those are imported fresh by each step, so an edit is always seen. It exits when idle,
when its environment changes on disk, or when asked to (``stop_servers``).

The servers listen on Unix sockets in a folder only this user can open
(``$XDG_RUNTIME_DIR/cellpipe`` or ``$TMPDIR/cellpipe-UID``), and check the peer's uid.
Protocol, one JSON line each way: ``{"argv", "log", "cwd", "umask", "env"}`` →
``{"pid"}``, then
``{"exit"}`` when the step ends. A client that goes away takes its step with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["WarmServer", "WarmStep", "list_servers", "preload_modules", "read_line",
           "server_folder", "stop_servers"]

BASE_MODULES = ("IPython.core.interactiveshell", "IPython.utils.capture",
                "cellpipe.engines.local.worker", "cellpipe.runtime.__main__",
                "cellpipe.runtime.execute", "cellpipe.runtime.report", "cellpipe.core.spec",
                "cellpipe.marshal")
# Change with every command a shell runs, and say nothing about what an import does.
_VOLATILE_ENV = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "PYTEST_CURRENT_TEST", "COLUMNS",
                           "LINES"})
MAX_SERVERS = 4  # idle servers beyond this are asked to exit, least recently used first
_READY_TIMEOUT = 300.0
# preloading a large library (tensorflow) can take a while
_ENTRY = ("import json, sys; from cellpipe.engines.local.warm_server import main; "
          "main(json.loads(sys.argv[1]))")


def idle_seconds() -> float:
    """How long a server waits for its next step before it exits (at least 2 s)."""
    try:
        return max(2.0, float(os.environ.get("CELLPIPE_WARM_IDLE", "120")))
    except ValueError:
        return 120.0


def server_folder() -> Path:
    """The folder of this user's server sockets (created private, checked private)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "cellpipe" if runtime and os.path.isdir(runtime) else \
        Path(tempfile.gettempdir()) / f"cellpipe-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{base} is not private to this user (owner {info.st_uid}, mode "
                      f"{info.st_mode & 0o777:o}): not starting a warm server there")
    return base


# -- what a server is for -------------------------------------------------------------


def preload_modules(sources: Iterable[str], notebook_dir: Path) -> list[str]:
    """The base modules and every installed module the cells import (never run)."""
    import ast

    modules = list(BASE_MODULES)
    for source in sources:
        try:
            body = ast.parse(source).body
        except SyntaxError:  # magics: the import lines alone
            body = []
            for line in source.splitlines():
                if line.startswith(("import ", "from ")):
                    with contextlib.suppress(SyntaxError):
                        body += ast.parse(line).body
        for node in body:
            if isinstance(node, ast.Import):
                modules.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    local = _local_roots(notebook_dir)
    return sorted(m for m in dict.fromkeys(modules)
                  if m != "__future__" and not _is_local(m.partition(".")[0], local))


def _local_roots(notebook_dir: Path) -> list[str]:
    """Folders whose modules can change between runs: the notebook's, and sys.path's own."""
    installed = tuple(str(Path(p)) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    roots = [str(notebook_dir), os.getcwd()]
    roots += [entry for entry in sys.path if entry and not entry.startswith(installed)]
    return list(dict.fromkeys(roots))


def _is_local(top: str, roots: list[str]) -> bool:
    return any(os.path.exists(os.path.join(root, top + ".py"))
               or os.path.isdir(os.path.join(root, top)) for root in roots)


def _key(preload: list[str]) -> str:
    import cellpipe
    from cellpipe.engines.inputs import environment_stamp

    package = Path(cellpipe.__file__).parent
    sources = sorted((str(p), p.stat().st_mtime_ns) for p in package.rglob("*.py"))
    env = sorted((k, v) for k, v in os.environ.items() if k not in _VOLATILE_ENV)
    parts = [sys.executable, sys.version, os.getcwd(), umask(), environment_stamp(), sources,
             env, preload]
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=10).hexdigest()


# -- the client -----------------------------------------------------------------------


class WarmServer:
    """A client of the server for one module set; :meth:`start` does not wait for it."""

    def __init__(self, preload: list[str]) -> None:
        self.preload = preload
        self.key = _key(preload)
        self.folder = server_folder()
        self.path = self.folder / f"{self.key}.sock"

    def start(self) -> WarmServer:
        """Make sure a server is listening (start one if needed); returns at once."""
        with self._locked():
            if not self._alive():
                self._launch()
        return self

    def fork(self, argv: list[str], log: str, cwd: str) -> WarmStep:
        """Fork one step from the server (started again if it went away meanwhile)."""
        request = json.dumps({"argv": argv, "log": log, "cwd": cwd, "umask": umask(),
                              "env": dict(os.environ)}).encode() + b"\n"
        for attempt in (1, 2):
            try:
                conn = self._connect()
                conn.sendall(request)
                reply = read_line(conn, _READY_TIMEOUT)
                if reply is None:
                    conn.close()
                    raise ConnectionError("the warm server closed the connection")
                pid = int(json.loads(reply)["pid"])
                with contextlib.suppress(OSError):
                    os.utime(self.path)  # least recently used is evicted first
                return WarmStep(conn, pid, self.folder / f"{self.key}.log")
            except (OSError, ValueError, KeyError) as exc:
                if attempt == 2:
                    raise ConnectionError(f"the warm server at {self.path} did not start "
                                          f"the step: {exc}") from exc
                self.start()
        raise AssertionError("unreachable")

    def _alive(self) -> bool:
        try:
            self._connect().close()
        except OSError:
            return False
        return True

    def _connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.path))
        except OSError:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.folder / f"{self.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _launch(self) -> None:
        """Bind the socket here and hand it to a new server: clients can connect at once."""
        _evict(self.folder, keep=MAX_SERVERS - 1)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            listener.listen(64)
            os.set_inheritable(listener.fileno(), True)
            args = json.dumps({"fd": listener.fileno(), "preload": self.preload,
                               "path": sys.path, "idle": idle_seconds(),
                               "socket": str(self.path)})
            with open(self.folder / f"{self.key}.log", "ab") as log:
                subprocess.Popen(
                    [sys.executable, "-c", _ENTRY, args],
                    pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, start_new_session=True)
        finally:
            listener.close()


class WarmStep:
    """A step forked by the server, as the scheduler sees it (a :class:`StepHandle`)."""

    def __init__(self, conn: socket.socket, pid: int, server_log: Path) -> None:
        self.conn = conn
        self.pid = pid
        self.server_log = server_log
        self._exitcode: int | None = None
        self.failure_message: str | None = None

    @property
    def sentinel(self) -> int:
        """The connection to the server: readable when the step has ended."""
        return self.conn.fileno() if self._exitcode is None else -1

    @property
    def exitcode(self) -> int | None:
        """The step's exit code once it ended (negative: the signal that killed it)."""
        return self._exitcode

    def join(self, timeout: float | None = None) -> None:
        """Wait for the server to say the step ended (at most ``timeout`` seconds)."""
        if self._exitcode is not None:
            return
        line = read_line(self.conn, timeout)
        if line is None and timeout is not None and self._alive():
            return  # still running
        if line is None:  # it just ended: its exit line may be on the way (at once if EOF)
            line = read_line(self.conn, 1.0)
        self.conn.close()
        try:
            self._exitcode = int(json.loads(line)["exit"]) if line else None
        except (ValueError, KeyError):
            self._exitcode = None
        if self._exitcode is None:  # the server went away before the step ended
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)  # no step runs on without its record
            self._exitcode = -signal.SIGKILL
            self.failure_message = ("the warm server that forked the step ended before it "
                                    f"(its log: {self.server_log}); the step was stopped")

    def _alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """End the step: SIGTERM, then SIGKILL after 2 s."""
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
            if self._exitcode is not None:
                return
            with contextlib.suppress(OSError):
                os.kill(self.pid, sig)
            self.join(grace)
        if self._exitcode is None:
            self.conn.close()
            self._exitcode = -signal.SIGKILL

    def describe(self) -> dict[str, Any]:
        """The step process's pid, for the run record."""
        return {"pid": self.pid}


def umask() -> int:
    """This process's umask, read without setting it (threads may be creating files)."""
    with contextlib.suppress(OSError, ValueError), \
            open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: read it by setting it
    os.umask(mask)
    return mask


def read_line(conn: socket.socket, timeout: float | None) -> bytes | None:
    """One line from ``conn``; None on end of stream or when ``timeout`` passes first."""
    conn.settimeout(timeout)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                return None
            data += chunk
    except TimeoutError:
        return None
    finally:
        with contextlib.suppress(OSError):
            conn.settimeout(None)
    return data


def _ask(path: Path, request: dict[str, Any], timeout: float = 2.0) -> dict[str, Any] | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        line = read_line(conn, timeout)
        return json.loads(line) if line else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def _evict(folder: Path, keep: int) -> None:
    """Ask the least recently used servers to exit until at most ``keep`` are left."""
    servers = []
    for path in folder.glob("*.sock"):
        with contextlib.suppress(OSError):
            servers.append((path.stat().st_mtime, path))
    for _, path in sorted(servers)[:max(0, len(servers) - keep)]:
        if _ask(path, {"op": "quit"}, timeout=0.2) is None and not _listening(path):
            with contextlib.suppress(OSError):
                path.unlink()  # nobody listens there: a server that died


def _listening(path: Path) -> bool:
    """Whether a process listens at ``path`` (it may still be loading its modules)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        return False
    finally:
        conn.close()
    return True


def list_servers() -> list[dict[str, Any]]:
    """This user's warm servers: pid, running steps, socket, seconds since last used."""
    import time

    found = []
    for path in sorted(server_folder().glob("*.sock")):
        answer = _ask(path, {"op": "ping"}, timeout=0.5)
        if answer is None:
            continue
        try:
            idle = max(0.0, time.time() - path.stat().st_mtime)
        except OSError:
            continue
        found.append({"pid": answer.get("pid"), "steps": answer.get("children", 0),
                      "socket": str(path), "idle_seconds": round(idle, 1)})
    return found


def stop_servers() -> int:
    """Ask every warm server of this user to exit (after its running steps); how many."""
    stopped = 0
    for path in server_folder().glob("*.sock"):
        if _ask(path, {"op": "quit"}) is not None:
            stopped += 1
    return stopped
