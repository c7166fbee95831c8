"""What the analysis of a cell produces: its events, imports and definitions, in order."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from cellpipe.core.scopes import (
    ScopeSummary,
)


@dataclass(frozen=True)
class Definition:
    """A function or class defined at the top level of a cell.

    Attributes:
        name: The bound name.
        source: Its source (with decorators), ready to be replayed.
        scope: What it reads, writes and mutates when called.
        cell: Index of the defining cell.
        line: Line of the definition in that cell.
    """

    name: str
    source: str
    scope: ScopeSummary
    cell: int
    line: int

@dataclass(frozen=True)
class Import:
    """An import statement binding ``names``; ``source`` replays it."""

    names: tuple[str, ...]
    source: str
    cell: int
    line: int

@dataclass(frozen=True)
class Event:
    """One effect of a cell's top-level code on the notebook's names, in order.

    ``kind`` is one of ``load``, ``store``, ``del``, ``mutate``, ``call``, ``use``, ``rng``,
    ``file``, ``dynamic``, ``star``. ``file`` events are a read, write, mkdir or chdir
    (``name``) of the path template in ``binding`` (None: a path not known). ``use`` names
    an object whose method is called, that is passed to a call or iterated (it advances if
    it is a generator or an iterator); ``rng`` is a draw from (``name`` ``draw``) or a
    seeding of (``seed``) the global random state, a seed carrying ``binding`` = (statement,
    the names it reads). ``store`` events carry ``binding``: ``value``, or an
    :class:`Import` / :class:`Definition`; ``definite`` is False where the store may not
    happen (a branch, a loop body; a ``demote`` store marks a loop variable as only maybe
    bound after its loop, a ``confirm`` store marks a name bound on every branch); ``alias``
    is True where the stored value may be shared with other names (``d = df``, a loop
    variable). ``mutate`` events carry ``alias`` when the change goes through a container's
    element (``d[0]["x"] = …``). ``call`` events list the root names of positional arguments
    (up to the first ``*args``) and of keyword arguments. ``star`` events carry the
    :class:`Import` to replay.
    """

    kind: str
    name: str
    line: int
    definite: bool = True
    alias: bool = False
    binding: object = None
    args: tuple[str | None, ...] = ()
    keywords: tuple[tuple[str, str | None], ...] = ()
    made_by: str | None = None  # store: the dotted function whose call made the value
    source: str | None = None  # store: the name whose object is bound again (``r = rng``)
    shares: tuple[str, ...] = ()  # store: names whose objects the value holds (``[a, b]``)
    method: str | None = None  # use: the method called on the object
    path: tuple[object, ...] | None = None  # store: the path template the value is

@dataclass
class CellCode:
    """A code cell after transformation and scanning.

    Attributes:
        index: Cell index in the notebook.
        python: The cell's code as Python (IPython syntax transformed, installs removed).
        events: Top-level effects in execution order.
        setup: Statements that configure the session (replayed in later steps), each with
            the global names it reads.
        requirements: Packages named by ``!pip install`` lines.
        source: The cell as a step runs it: IPython syntax kept, install lines blanked.
        only_shared: True when the cell holds only imports, definitions and setup.
        syntax_error: (message, line) when the cell cannot be parsed.
        notes: (code, message, line) findings for lint.
    """

    index: int
    python: str
    source: str = ""
    line_offset: int = 0
    events: list[Event] = field(default_factory=list)
    setup: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    only_shared: bool = True
    syntax_error: tuple[str, int] | None = None
    notes: list[tuple[str, str, int]] = field(default_factory=list)
    tree: ast.Module | None = None
