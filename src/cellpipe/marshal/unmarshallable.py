"""Values that cannot live outside the process that made them, recognised before pickling.

An open file, a generator, a lock or a database connection is process state, not data:
pickling it fails deep inside pickle, or worse, "succeeds" with a useless copy. These are
caught up front by type, with advice fit for each kind; anything else that pickle refuses
is reported by the store with pickle's own reason.
"""

from __future__ import annotations

import io
import types
from collections.abc import Sequence

from cellpipe.marshal.errors import MarshalError
from cellpipe.marshal.meta import qualified_name

_REOPEN = "re-open the file in the step that uses it, or read its contents into a variable"
_CONNECT = (
    "connect in the step that uses it; pass on the connection settings or query results instead"
)
_CREATE = "create it in the step that uses it"

# Qualified names (anywhere in the type's MRO) → (what it is, how to fix it). Names, not
# imports: checking for a socket must not import the socket module.
_BY_NAME: dict[str, tuple[str, str]] = {
    "_thread.lock": ("a thread lock", _CREATE),
    "_thread.RLock": ("a thread lock", _CREATE),
    "threading.Condition": ("a thread condition", _CREATE),
    "threading.Semaphore": ("a thread semaphore", _CREATE),
    "threading.Event": ("a thread event", _CREATE),
    "threading.Barrier": ("a thread barrier", _CREATE),
    "threading.Thread": ("a running thread", "start the thread in the step that uses it"),
    "socket.socket": ("a network socket", "open the connection in the step that uses it"),
    "ssl.SSLSocket": ("a network socket", "open the connection in the step that uses it"),
    "sqlite3.Connection": ("a database connection", _CONNECT),
    "sqlite3.Cursor": ("a database cursor", _CONNECT),
    "psycopg2.extensions.connection": ("a database connection", _CONNECT),
    "psycopg2.extensions.cursor": ("a database cursor", _CONNECT),
    "sqlalchemy.engine.base.Engine": ("a database engine", _CONNECT),
    "sqlalchemy.engine.base.Connection": ("a database connection", _CONNECT),
    "subprocess.Popen": ("a running process", "start the process in the step that uses it"),
    "multiprocessing.pool.Pool": ("a process pool", _CREATE),
    "concurrent.futures.thread.ThreadPoolExecutor": ("a thread pool", _CREATE),
    "concurrent.futures.process.ProcessPoolExecutor": ("a process pool", _CREATE),
}

_GENERATOR_HINT = (
    "turn it into a list (list(...)) in the step that makes it, "
    "or create the generator in the step that uses it"
)


def describe(value: object) -> tuple[str, str] | None:
    """Say what kind of process-bound object ``value`` is, if it is one.

    Args:
        value: Any object.

    Returns:
        ``(what it is, how to fix it)``, or None if the value is not a known kind.
    """
    if isinstance(value, io.IOBase) and not isinstance(value, (io.BytesIO, io.StringIO)):
        return "an open file or stream", _REOPEN
    if isinstance(value, (types.GeneratorType, types.AsyncGeneratorType)):
        return "a generator", _GENERATOR_HINT
    if isinstance(value, types.CoroutineType):
        return "a coroutine", "await it in the step that makes it and pass on the result"
    if isinstance(value, types.ModuleType):
        return "a module", (
            "import it in the step that uses it (imports are replayed in every step, "
            "not passed between steps)"
        )
    if isinstance(value, (types.FrameType, types.TracebackType)):
        return "an interpreter frame", "pass on the data you need from it instead"
    for kind in type(value).__mro__:
        found = _BY_NAME.get(qualified_name(kind))
        if found is not None:
            return found
    return None


def describe_consumers(consumers: Sequence[str]) -> str:
    """Name the steps that read a value, for a message ("step 'b'", "steps 'b' and 'c'")."""
    names = [repr(name) for name in consumers]
    if not names:
        return "later steps"
    if len(names) == 1:
        return f"step {names[0]}"
    return f"steps {', '.join(names[:-1])} and {names[-1]}"


def cannot_marshal(
    value: object,
    *,
    step: str,
    variable: str,
    consumers: Sequence[str],
    what: str,
    hint: str,
    reason: str | None = None,
) -> MarshalError:
    """Build the error for a value that cannot be passed between steps.

    Args:
        value: The value.
        step: The producing step.
        variable: The variable name.
        consumers: The steps that read it.
        what: What it is ("an open file or stream").
        hint: How to fix it.
        reason: The serializer's own words, when it is what refused.

    Returns:
        A :class:`MarshalError` carrying step, variable, type and consumers.
    """
    type_name = qualified_name(type(value))
    message = (
        f"variable {variable!r} is {what} ({type_name}) and cannot be passed "
        f"to {describe_consumers(consumers)}"
    )
    if reason:
        message += f": {reason}"
    return MarshalError(
        message,
        step=step,
        variable=variable,
        type_name=type_name,
        consumers=consumers,
        hint=hint,
    )


def write_failed(
    value: object,
    format_name: str,
    error: Exception,
    *,
    step: str,
    variable: str,
    consumers: Sequence[str],
) -> MarshalError:
    """Build the error for a serializer that raised while writing ``value``.

    Args:
        value: The value.
        format_name: The format that failed.
        error: What it raised.
        step: The producing step.
        variable: The variable name.
        consumers: The steps that read it.

    Returns:
        A :class:`MarshalError`; when pickling itself refused the value, it says the value
        is not picklable and how to avoid passing it on.
    """
    reason = f"{format_name} failed: {type(error).__name__}: {error}"
    if format_name in ("cloudpickle", "pandas-pickle"):
        return cannot_marshal(
            value,
            step=step,
            variable=variable,
            consumers=consumers,
            what="not picklable",
            hint="recreate it in the step that uses it, or pass on plain data instead",
            reason=reason,
        )
    type_name = qualified_name(type(value))
    return MarshalError(
        f"variable {variable!r} ({type_name}) could not be written "
        f"for {describe_consumers(consumers)}: {reason}",
        step=step,
        variable=variable,
        type_name=type_name,
        consumers=consumers,
        hint="report this, with the value's type, to the serializer's authors",
    )
