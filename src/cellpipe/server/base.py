"""What every cellpipe route shares: the error mapping, notebook paths, JSON in and out.

:func:`maps_errors` is the one place where exceptions become HTTP responses, so a verb
is written for the success case only and every failure has the same JSON shape: a
:class:`~cellpipe.errors.CellpipeError`'s ``to_dict()`` with the fields that are set
(``message``, ``hint``, ``cell``, ``line``, ``step``, ``variable``, ``path``, ``type``; and
``diagnostics`` for a notebook that cannot be a pipeline), or ``{"message", "hint"?}``
for a refused request.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from http.client import responses
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from cellpipe import api
from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.server.app import CellpipeApp
    from cellpipe.server.runs import RunRegistry


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and what to do instead.

    Attributes:
        status: The HTTP status code.
        message: What is wrong with the request, in one sentence.
        hint: How to fix it, if there is something to say.
    """

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        self.status = status
        self.message = message
        self.hint = hint
        super().__init__(message)


def error_response(exc: BaseException, root_dir: Path | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body that answer a request which raised ``exc``.

    Args:
        exc: What the verb raised.
        root_dir: The server's root directory; notebook paths in messages are shown
            relative to it, as the client named them.
    """
    if isinstance(exc, RequestError):
        return exc.status, _body(exc.message, exc.hint)
    if isinstance(exc, CellpipeError):
        # the error's own JSON (what runs record too), set fields only; the message says
        # where, with notebook paths as the client named them
        body = {k: v for k, v in exc.to_dict().items() if v is not None and v != []}
        body["message"] = _located_message(exc, root_dir)
        if exc.path is not None:
            body["path"] = _relative(exc.path, root_dir)
        return exc.http_status, body
    if isinstance(exc, web.HTTPError):
        if exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = exc.reason or responses.get(exc.status_code, "error")
        return exc.status_code, _body(message)
    return 500, _body(f"internal error: {type(exc).__name__}: {exc}",
                      "the server log has the traceback")


def _body(message: str, hint: str | None = None) -> dict[str, Any]:
    return {"message": message, **({"hint": hint} if hint else {})}


def _located_message(exc: CellpipeError, root_dir: Path | None) -> str:
    """The error's one line (where + what) without its hint, with paths made relative."""
    text = str(exc)
    if exc.hint:
        text = text.removesuffix(f" ({exc.hint})")
    if root_dir is not None:
        text = text.replace(f"{root_dir}{os.sep}", "")
    return text


def _relative(path: str, root_dir: Path | None) -> str:
    if root_dir is not None and path.startswith(f"{root_dir}{os.sep}"):
        return path[len(str(root_dir)) + 1:]
    return path


H = TypeVar("H", bound="CellpipeHandler")
P = ParamSpec("P")


def maps_errors(
    verb: Callable[Concatenate[H, P], Awaitable[None]],
) -> Callable[Concatenate[H, P], Coroutine[Any, Any, None]]:
    """Answer whatever ``verb`` raises with :func:`error_response`; log server faults.

    Goes innermost, under ``@web.authenticated`` and ``@authorized``.
    """

    async def mapped(self: H, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await verb(self, *args, **kwargs)
        except Exception as exc:
            status, body = error_response(exc, self.root_dir)
            if status >= 500:
                self.log.error("cellpipe: %s %s failed", self.request.method,
                               self.request.path, exc_info=exc)
            self.clear()
            self.set_status(status)
            self.finish(json.dumps(body))

    functools.update_wrapper(mapped, verb)
    return mapped


class JsonBody:
    """A request's JSON object; each read checks the field's type and names it if wrong."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def text(self, name: str, default: str | None = None) -> str:
        """A required string field (or ``default`` when it is absent)."""
        value = self.optional_text(name)
        if value is not None:
            return value
        if default is None:
            raise RequestError(400, f"missing field {name!r} in the request body")
        return default

    def optional_text(self, name: str) -> str | None:
        """A string field, or None when absent."""
        return cast("str | None", self._typed(name, str, "a string"))

    def mapping(self, name: str) -> dict[str, Any] | None:
        """An object field, or None when absent."""
        return cast("dict[str, Any] | None", self._typed(name, dict, "an object"))

    def flag(self, name: str, default: bool) -> bool:
        """A boolean field."""
        value = self._typed(name, bool, "true or false")
        return default if value is None else bool(value)

    def check_known(self, known: set[str]) -> None:
        """Refuse fields the route does not read, so a misspelt option is not ignored."""
        unknown = sorted(set(self.data) - known)
        if unknown:
            from cellpipe.api import did_you_mean

            raise RequestError(400, f"unknown field {unknown[0]!r} in the request body",
                               hint=did_you_mean(unknown[0], known)
                               or f"known fields: {', '.join(sorted(known))}")

    def _typed(self, name: str, kind: type, what: str) -> Any:
        value = self.data.get(name)
        if value is not None and not isinstance(value, kind):
            raise RequestError(400, f"field {name!r} must be {what}, not {json.dumps(value)}")
        return value


def resolve_path(root_dir: Path, api_path: str, what: str = "notebook",
                 must_exist: bool = True) -> Path:
    """The file at ``api_path`` (relative to the server's root, ``/``-separated).

    ``must_exist=False`` takes a file not saved yet, in a folder that exists.

    Raises:
        RequestError: 403 for an absolute path or one that leaves the root directory,
            404 when there is no such file (or, without ``must_exist``, no such folder).
    """
    if (not api_path or api_path.startswith(("/", "\\")) or PureWindowsPath(api_path).drive
            or Path(api_path).is_absolute()):
        raise RequestError(403, f"{what} path {api_path!r} must be relative to the server's "
                           "root directory", hint="give the path as JupyterLab shows it")
    normal = posixpath.normpath(api_path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        raise RequestError(403, f"{what} path {api_path!r} leaves the server's root directory")
    path = root_dir.joinpath(*PurePosixPath(normal).parts)
    if not must_exist and not path.is_dir() and path.parent.is_dir():
        return path
    if not path.is_file():
        raise RequestError(404, f"no {what} {api_path!r} under the server's root directory",
                           hint="save the notebook first" if what == "notebook" else None)
    return path


def runs_root(notebook: Path) -> Path:
    """Where a notebook's runs are kept: ``$CELLPIPE_HOME`` or ``.cellpipe`` beside it."""
    return api.default_root(notebook)


class CellpipeHandler(ExtensionHandlerMixin, APIHandler):
    """Base of the cellpipe routes: the extension's settings, paths and JSON helpers."""

    auth_resource = "cellpipe"

    @property
    def app(self) -> CellpipeApp:
        """The running :class:`~cellpipe.server.app.CellpipeApp`."""
        return cast("CellpipeApp", self.extensionapp)

    @property
    def registry(self) -> RunRegistry:
        """The runs this server started and that are still going."""
        return self.app.registry

    @property
    def root_dir(self) -> Path:
        """The server's root directory (what JupyterLab's file browser shows)."""
        root = self.settings.get("server_root_dir") or self.contents_manager.root_dir
        return Path(os.path.expanduser(str(root))).absolute()

    def notebook(self, api_path: str, must_exist: bool = True) -> Path:
        """The notebook file at ``api_path`` (see :func:`resolve_path`)."""
        return resolve_path(self.root_dir, api_path, must_exist=must_exist)

    def query_notebook(self, must_exist: bool = True) -> Path:
        """The notebook named by the ``path`` query argument."""
        return self.notebook(self.query("path"), must_exist=must_exist)

    def query(self, name: str) -> str:
        """A required query argument."""
        value = self.get_query_argument(name, None)
        if value is None:
            raise RequestError(400, f"missing query argument {name!r}")
        return value

    def query_number(self, name: str, default: float, maximum: float) -> float:
        """An optional numeric query argument, at most ``maximum``."""
        text = self.get_query_argument(name, None)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise RequestError(400, f"query argument {name!r} must be a number, "
                               f"not {text!r}") from None
        return max(0.0, min(value, maximum))

    def json_body(self) -> JsonBody:
        """The request's JSON object."""
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise RequestError(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return JsonBody(data)

    def reply(self, body: Any, status: int = 200) -> None:
        """Answer with ``body`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(body, default=str))
