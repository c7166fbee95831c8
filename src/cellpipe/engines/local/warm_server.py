"""The warm server's own process: preload, build the step shell, fork a step per request.

Started by :class:`cellpipe.engines.local.warm.WarmServer` with the listening socket
already bound (so clients can connect while it loads). One thread, one ``select`` loop
over the socket, the connections of running steps and a SIGCHLD wake-up pipe: a fork
answers ``{"pid"}``, a step's end ``{"exit"}``; a connection that closes first kills its
step. It exits when idle, when asked to, when its socket is replaced or when something is
installed into its environment (the folders holding ``*.dist-info`` change).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from cellpipe.engines.local.warm import read_line

__all__ = ["main"]


def _serve(listener: socket.socket, socket_path: str, idle: float) -> None:
    import selectors

    from cellpipe.engines.inputs import environment_stamp

    stamp = environment_stamp()
    inode = os.stat(socket_path).st_ino
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    children: dict[int, socket.socket] = {}  # pid -> the connection of its client
    owners: dict[int, int] = {}  # connection fd -> pid
    listening = True
    last = time.monotonic()

    def stop_listening() -> None:
        nonlocal listening
        if listening:
            selector.unregister(listener)
            with contextlib.suppress(OSError):
                if os.stat(socket_path).st_ino == inode:
                    os.unlink(socket_path)
            listener.close()
            listening = False

    while listening or children:
        events = selector.select(timeout=min(idle, 5.0))
        now = time.monotonic()
        if not events:
            if not children and now - last >= idle:
                break
            try:
                moved = os.stat(socket_path).st_ino != inode
            except OSError:
                moved = True
            if moved or environment_stamp() != stamp:
                stop_listening()  # replaced, or something was installed: finish and go
            continue
        for key, _ in events:
            if key.data == "accept":
                with contextlib.suppress(OSError):
                    conn, _ = listener.accept()
                    last = now
                    started = _handle(conn, listener, selector, children, wake_r, wake_w)
                    if started == "quit":
                        stop_listening()
                    elif isinstance(started, int):
                        children[started] = conn
                        owners[conn.fileno()] = started
                        selector.register(conn, selectors.EVENT_READ, "client")
            elif key.data == "child":
                with contextlib.suppress(OSError):
                    os.read(wake_r, 4096)
                _reap(children, owners, selector)
                last = now
            elif key.data == "client":  # a client went away: its step goes too
                gone = key.fileobj
                fd = gone if isinstance(gone, int) else gone.fileno()
                pid = owners.get(fd)
                if pid is not None:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                selector.unregister(gone)
    stop_listening()
    selector.close()


def _handle(conn: socket.socket, listener: socket.socket, selector: Any,
            children: dict[int, socket.socket], wake_r: int, wake_w: int) -> int | str | None:
    """Read one request; fork its step (the pid), answer a control one, or refuse it."""
    creds = getattr(socket, "SO_PEERCRED", None)
    if creds is not None:
        import struct

        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, creds, 12))
        if uid != os.getuid():
            conn.close()
            return None
    line = read_line(conn, 10.0)
    try:
        request = json.loads(line) if line else None
    except ValueError:
        request = None
    if not isinstance(request, dict):
        conn.close()
        return None
    if request.get("op") in ("quit", "ping"):
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"pid": os.getpid(), "children": len(children)}).encode()
                         + b"\n")
        conn.close()
        return "quit" if request["op"] == "quit" else None
    pid = os.fork()
    if pid == 0:  # the step
        code = 2
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_r, wake_w):
                os.close(fd)
            selector.close()
            listener.close()
            for other in children.values():
                other.close()
            conn.close()
            os.environ.clear()
            os.environ.update(request["env"])
            os.umask(int(request.get("umask", 0o022)))
            from cellpipe.engines.local.worker import run_child

            run_child(list(request["argv"]), str(request["log"]), str(request["cwd"]))
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    try:
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pid


def _reap(children: dict[int, socket.socket], owners: dict[int, int], selector: Any) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        owners.pop(conn.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(conn)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode()
                         + b"\n")
        conn.close()


def main(args: dict[str, Any]) -> None:
    """Preload, build the step shell, then serve until idle."""
    import gc
    import importlib

    listener = socket.socket(fileno=int(args["fd"]))
    sys.path[:] = args["path"]
    for module in args["preload"]:
        with contextlib.suppress(BaseException):  # a module that fails is imported by the step
            importlib.import_module(module)
    importlib.import_module("cellpipe.runtime.warm")
    gc.collect()
    gc.freeze()  # forked steps share these pages instead of copying them when gc walks them
    try:
        _serve(listener, args["socket"], float(args["idle"]))
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
    base = Path(args["socket"]).with_suffix("")
    with contextlib.suppress(OSError):
        os.unlink(f"{base}.lock")  # a client racing this only starts a server needlessly
        if os.stat(f"{base}.log").st_size == 0:
            os.unlink(f"{base}.log")

