"""Schedules from Python: have a cluster target run a notebook's pipeline at cron times.

``cellpipe.api`` re-exports these names. Only targets with the methods of
:class:`cellpipe.targets.base.SchedulingTarget` can schedule (``argo``: a CronWorkflow;
``kfp``: a recurring run); any other is refused with that said. The cron expression, time
zone and concurrency policy are checked before anything is compiled or built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.core.notebook import NotebookLike
    from cellpipe.targets.base import Schedule, ScheduleOptions, SchedulingTarget

__all__ = ["check_schedule", "list_schedules", "schedule", "scheduling_target", "unschedule"]

_METHODS = ("schedule", "schedules", "unschedule")


def check_schedule(cron: str, *, name: str | None = None, timezone: str | None = None,
                   concurrency_policy: str = "Forbid",
                   suspend: bool = False) -> tuple[str, ScheduleOptions]:
    """The cron expression (five fields, single-spaced) and the options, checked.

    Raises:
        CellpipeError: The cron expression, time zone or concurrency policy is not valid;
            the message names the field or value, the hint how to write it.
    """
    from cellpipe.targets.base import ScheduleOptions
    from cellpipe.targets.cron import check_concurrency_policy, check_cron, check_timezone

    return check_cron(cron), ScheduleOptions(
        name=name or None,
        timezone=check_timezone(timezone) if timezone else None,
        concurrency_policy=check_concurrency_policy(concurrency_policy),
        suspend=bool(suspend),
    )


def scheduling_target(name: str) -> SchedulingTarget:
    """The target registered as ``name``, if it can schedule runs.

    Raises:
        CellpipeError: ``name`` is no target, or its class has no ``schedule``,
            ``schedules`` and ``unschedule`` methods.
    """
    from cellpipe.cluster_api import cluster_target_names, load_target

    target = load_target(name)
    if all(callable(getattr(target, method, None)) for method in _METHODS):
        return cast("SchedulingTarget", target)  # it has the methods: checked just above
    able = [other for other in cluster_target_names()
            if other != name and _can_schedule(other)]
    raise CellpipeError(
        f"target {name!r} cannot schedule runs (it has no {', '.join(_METHODS)} methods)",
        hint=(f"schedule on {' or '.join(able)}, or " if able else "")
        + "have a scheduler of your own (cron, CI) run `cellpipe submit`")


def schedule(
    notebook: NotebookLike,
    target: str,
    *,
    cron: str,
    parameters: Mapping[str, Any] | None = None,
    connection: Mapping[str, Any] | None = None,
    name: str | None = None,
    timezone: str | None = None,
    concurrency_policy: str = "Forbid",
    suspend: bool = False,
    **options: Any,
) -> Schedule:
    """Compile the notebook for ``target`` and have the cluster run it at the times of ``cron``.

    Args:
        notebook: The notebook (a path, an nbformat node or dict, a ``Notebook``).
        target: ``argo``, ``kfp`` or a plugin's target that can schedule.
        cron: Five fields: minute hour day-of-month month day-of-week (``0 3 * * *``).
        parameters: Parameter values every run gets (typed, as ``convert_parameter``
            makes them); the others keep the notebook's defaults.
        connection: How to reach the cluster (``namespace``; ``host``, ``experiment`` for KFP).
        name: The schedule's name (default: the pipeline's).
        timezone: The IANA time zone ``cron`` is read in (default: the cluster's).
        concurrency_policy: ``Forbid`` (default), ``Allow`` or ``Replace``.
        suspend: Create it suspended.
        **options: :func:`cellpipe.api.compile_target`'s (``images`` or ``registry``, the
            cluster settings to override).

    Raises:
        CellpipeError: A bad cron expression, time zone or policy (before anything is
            compiled), a target that cannot schedule, or what the cluster answered.
    """
    from cellpipe.cluster_api import compile_document

    expression, chosen = check_schedule(cron, name=name, timezone=timezone,
                                        concurrency_policy=concurrency_policy,
                                        suspend=suspend)
    scheduler = scheduling_target(target)
    reach = dict(connection or {})
    if reach.get("namespace") and "namespace" not in options:
        options["namespace"] = reach["namespace"]
    document = compile_document(notebook, target, **options)
    return scheduler.schedule(document, cron=expression, parameters=dict(parameters or {}),
                              connection=reach, options=chosen)


def list_schedules(target: str, **connection: Any) -> list[Schedule]:
    """The schedules on ``target`` (on Argo: the CronWorkflows cellpipe made there)."""
    return list(scheduling_target(target).schedules(connection))


def unschedule(target: str, name: str, **connection: Any) -> Schedule:
    """Delete schedule ``name`` on ``target``; returns it as it was (runs it started stay)."""
    return scheduling_target(target).unschedule(name, connection)


def _can_schedule(name: str) -> bool:
    from cellpipe.cluster_api import load_target

    try:
        target = load_target(name)
    except CellpipeError:
        return False
    return all(callable(getattr(target, method, None)) for method in _METHODS)
