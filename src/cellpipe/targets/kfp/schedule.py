"""Recurring runs on a Kubeflow Pipelines API server, through ``kfp.Client``.

A schedule is a KFP recurring run with a cron trigger, filed under an experiment (made
when missing). KFP's cron has a seconds field first, so the five fields cellpipe checks run
at second 0; it has no time zone per recurring run (its scheduler's, UTC unless set) and
caps concurrent runs at 10, so ``Forbid`` is one run at a time, ``Allow`` ten, and
``Replace`` cannot be had. Missed runs are not caught up (``no_catchup``), as on Argo.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from cellpipe.errors import CellpipeError, MissingDependencyError
from cellpipe.targets.base import Schedule, ScheduleOptions
from cellpipe.targets.kfp.submit import server_error

__all__ = ["MAX_CONCURRENCY", "check_options", "connect", "create_recurring_run",
           "delete_recurring_run", "recurring_runs", "schedule_of"]

MAX_CONCURRENCY = {"Forbid": 1, "Allow": 10}  # KFP accepts 1 to 10 runs at once
_UTC = ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT")
_PAGE = 100


def connect(host: str, namespace: str | None) -> Any:
    """A ``kfp.Client`` for ``host``: the one place schedules get theirs.

    Tests replace this function with one returning a fake client, since no KFP API server
    can run where they do.
    """
    try:
        import kfp
    except ImportError:
        raise MissingDependencyError.for_extra("kfp", "kfp", "scheduling on Kubeflow") from None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0b2"
            return kfp.Client(host=host, **({"namespace": namespace} if namespace else {}))
    except Exception as exc:  # urllib3, kfp_server_api.ApiException, socket errors, ...
        raise server_error(host, exc, "the client") from exc


def create_recurring_run(client: Any, host: str, package: str, *, cron: str,
                         parameters: Mapping[str, Any], experiment: str | None,
                         namespace: str | None, options: ScheduleOptions) -> Schedule:
    """Create a recurring run of the compiled pipeline ``package`` (KFP IR YAML text).

    Args:
        client: A ``kfp.Client`` (:func:`connect`).
        host: Its endpoint, for messages.
        package: The IR YAML (``cellpipe compile --target kfp``).
        cron: Five checked cron fields (:func:`cellpipe.targets.cron.check_cron`).
        parameters: Pipeline parameter values (typed); absent ones keep their defaults.
        experiment: The experiment to file it under (default: ``Default``).
        namespace: The user namespace of a multi-user Kubeflow.
        options: Name (default: the pipeline's), time zone, concurrency policy, suspension.

    Raises:
        CellpipeError: A time zone or concurrency policy KFP cannot take, or the server
            refused or could not be reached.
    """
    check_options(options)
    name = options.name or _pipeline_name(package)
    with tempfile.TemporaryDirectory(prefix="cellpipe-kfp-") as directory:
        path = Path(directory) / "pipeline.yaml"
        path.write_text(package, encoding="utf-8")
        with _answers(host, f"the recurring run {name!r}"):
            filed = client.create_experiment(experiment or "Default", namespace=namespace)
            created = client.create_recurring_run(
                experiment_id=filed.experiment_id, job_name=name, cron_expression=f"0 {cron}",
                max_concurrency=MAX_CONCURRENCY[options.concurrency_policy], no_catchup=True,
                params=dict(parameters), pipeline_package_path=str(path),
                enabled=not options.suspend)
    return schedule_of(created)


def check_options(options: ScheduleOptions) -> None:
    """Refuse what a KFP recurring run cannot be given: a time zone, ``Replace``.

    Raises:
        CellpipeError: A time zone other than UTC, or the concurrency policy ``Replace``.
    """
    if options.timezone and options.timezone not in _UTC:
        raise CellpipeError(
            f"Kubeflow Pipelines takes no time zone per recurring run ({options.timezone!r}): "
            "its schedules follow its scheduler's (UTC unless the scheduledworkflow "
            "controller's CRON_SCHEDULE_TIMEZONE says otherwise)",
            hint="drop --timezone and write the cron expression in the scheduler's time zone")
    if options.concurrency_policy not in MAX_CONCURRENCY:
        raise CellpipeError(
            f"Kubeflow Pipelines cannot {options.concurrency_policy} a running run: it "
            "only limits how many run at once",
            hint="use --concurrency-policy Forbid (one at a time) or Allow (up to 10)")


def recurring_runs(client: Any, host: str, namespace: str | None) -> list[Schedule]:
    """Every recurring run the server lists (in ``namespace``), by name."""
    return sorted((schedule_of(run) for run in _listed(client, host, namespace)),
                  key=lambda found: (found.name, found.id))


def delete_recurring_run(client: Any, host: str, name: str,
                         namespace: str | None) -> Schedule:
    """Delete the recurring run whose id, else whose name, is ``name``; returns it as it was.

    Raises:
        CellpipeError: None has that id or name, or several have that name.
    """
    listed = _listed(client, host, namespace)
    matches = ([run for run in listed if run.recurring_run_id == name]
               or [run for run in listed if run.display_name == name])
    if not matches:
        known = ", ".join(sorted({str(run.display_name) for run in listed})) or "none"
        raise CellpipeError(
            f"the Kubeflow Pipelines API at {host} has no recurring run {name!r} "
            f"(there are: {known})",
            hint=f"list them with `cellpipe schedule --list --target kfp --host {host}`")
    if len(matches) > 1:
        ids = ", ".join(str(run.recurring_run_id) for run in matches)
        raise CellpipeError(f"{len(matches)} recurring runs are named {name!r}",
                            hint=f"delete one by its id: {ids}")
    with _answers(host, f"the deletion of recurring run {name!r}"):
        client.delete_recurring_run(matches[0].recurring_run_id)
    return schedule_of(matches[0])


def schedule_of(run: Any) -> Schedule:
    """What a ``V2beta1RecurringRun`` says about its schedule (cron without seconds)."""
    trigger = getattr(run, "trigger", None)
    cron_schedule = getattr(trigger, "cron_schedule", None)
    periodic = getattr(trigger, "periodic_schedule", None)
    cron = str(getattr(cron_schedule, "cron", "") or "")
    fields = cron.split()
    if len(fields) == 6 and fields[0] == "0":
        cron = " ".join(fields[1:])
    elif not cron and periodic is not None:
        cron = f"every {getattr(periodic, 'interval_second', '?')}s"
    concurrency = str(getattr(run, "max_concurrency", "") or "1")
    runtime = getattr(run, "runtime_config", None)
    identifier = str(getattr(run, "recurring_run_id", "") or "")
    return Schedule(
        name=str(getattr(run, "display_name", "") or identifier),
        cron=cron,
        concurrency_policy="Forbid" if concurrency == "1" else "Allow",
        suspended=str(getattr(run, "mode", "") or "") == "DISABLE"
        or str(getattr(run, "status", "") or "") == "DISABLED",
        parameters=dict(getattr(runtime, "parameters", None) or {}),
        title=f"KFP recurring run {identifier}",
        id=identifier,
    )


def _listed(client: Any, host: str, namespace: str | None) -> list[Any]:
    found: list[Any] = []
    token = ""
    with _answers(host, "the listing of recurring runs"):
        while True:
            page = client.list_recurring_runs(page_token=token, page_size=_PAGE,
                                              namespace=namespace)
            found += list(getattr(page, "recurring_runs", None) or [])
            token = str(getattr(page, "next_page_token", "") or "")
            if not token:
                return found


@contextlib.contextmanager
def _answers(host: str, what: str) -> Iterator[None]:
    """Turn what ``kfp.Client`` raises into a CellpipeError; keep what it prints (links)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    except CellpipeError:
        raise
    except Exception as exc:  # urllib3, kfp_server_api.ApiException, socket errors, ...
        raise server_error(host, exc, what) from exc


def _pipeline_name(package: str) -> str:
    """The pipeline's name in its IR (``pipelineInfo.name``)."""
    for document in yaml.safe_load_all(package):
        if isinstance(document, dict) and (document.get("pipelineInfo") or {}).get("name"):
            return str(document["pipelineInfo"]["name"])
    return "cellpipe"
