"""The Katib target (``--target katib``): a search over the pipeline's parameters on a cluster.

``compile`` gives a Katib ``Experiment`` whose trials are the pipeline's Argo Workflow
(:mod:`cellpipe.targets.katib.compile`); ``submit`` creates it through the Kubernetes API;
``status`` reads its phase, every trial and the best one so far back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cellpipe.core.spec import PipelineSpec
from cellpipe.errors import CellpipeError
from cellpipe.targets.base import Document, RunStatus, Submission
from cellpipe.targets.cluster import ClusterSettings
from cellpipe.targets.connection import ConnectionField

__all__ = ["KatibTarget"]


class KatibTarget:
    """A Katib Experiment: compiled, submitted, followed, its best trial read back."""

    name: ClassVar[str] = "katib"
    description: ClassVar[str] = ("a Katib Experiment (YAML) searching the parameters, its "
                                  "trials Argo Workflows, submitted through the Kubernetes API")
    connection: ClassVar[tuple[ConnectionField, ...]] = (
        ConnectionField("namespace", description="the Kubernetes namespace of the Experiment "
                        "(default: the kubeconfig context's)", example="kubeflow-user"),
    )
    # Its compile takes a search (options: objective, direction, space, trials, parallel,
    # max_failed, sampler): front ends read `-p NAME=SPACE` for it, not parameter values.
    searches: ClassVar[bool] = True

    def compile(self, spec: PipelineSpec, images: Mapping[str, str],
                settings: ClusterSettings, options: Mapping[str, Any]) -> Document:
        """The Experiment as data and as YAML; notes say what the trials leave out.

        ``options`` holds the search (see :func:`~cellpipe.targets.katib.search
        .search_settings`) and ``notebook_metadata``, whose ``cellpipe.tune`` gives its
        defaults.
        """
        from cellpipe.targets.argo.artifacts import artifacts_note
        from cellpipe.targets.argo.compile import to_yaml
        from cellpipe.targets.katib.compile import compile_katib
        from cellpipe.targets.katib.search import search_settings

        search = search_settings(spec, options.get("notebook_metadata"), options)
        experiment = compile_katib(spec, images, settings, search,
                                   carry_code=bool(options.get("carry_code")))
        step = next(m.step for m in spec.metrics if m.name == search.objective)
        elsewhere = [m.name for m in spec.metrics if m.step != step]
        notes = list(search.notes)
        if elsewhere:
            notes.append(f"katib: only step {step!r}'s metrics reach Katib (its collector "
                         f"watches one pod); {', '.join(elsewhere)} stay in the trials' "
                         "Workflows")
        note = artifacts_note(settings)
        if note:
            notes.append(f"katib: {note}")
        # No store of the experiment's own: each trial's values are under STORAGE/<trial>
        # (its Workflow's name), which `cellpipe status` lists.
        return Document(text=to_yaml(experiment), data=experiment, notes=tuple(notes))

    def submit(self, document: Document, *, parameters: Mapping[str, Any],
               watch: bool, timeout: float | None,
               on_event: Callable[[Any], None] | None,
               connection: Mapping[str, Any]) -> Submission:
        """Create the Experiment (``parameters`` fix untuned ones for every trial)."""
        from cellpipe.targets.argo.compile import parameter_text
        from cellpipe.targets.katib.client import KatibClient

        manifest = document.data
        if parameters:
            template = manifest["spec"]["trialTemplate"]
            tuned = {p["name"] for p in template.get("trialParameters", [])}
            both = sorted(tuned & set(parameters))
            if both:
                raise CellpipeError(f"parameter {both[0]!r} is searched: it cannot also be "
                                    "set for every trial", variable=both[0],
                                    hint="leave it out of the values, or out of the space")
            arguments = template["trialSpec"]["spec"].get("arguments", {}).get("parameters", [])
            for argument in arguments:
                if argument["name"] in parameters:
                    argument["value"] = parameter_text(parameters[argument["name"]])
        client = KatibClient(namespace=connection.get("namespace"))
        name = client.submit(manifest)
        title = f"Katib experiment {name}"
        if not watch:
            return Submission(name, "Submitted", title)
        return Submission(name, client.watch(name, on_event=on_event, timeout=timeout), title)

    def status(self, name: str, connection: Mapping[str, Any]) -> RunStatus:
        """The experiment's phase, each trial (values and metrics), and the best trial."""
        from cellpipe.targets.katib.client import FINAL_PHASES, KatibClient, trial_summary

        state = KatibClient(namespace=connection.get("namespace")).state(name)
        optimal: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        if state.optimal is not None:
            outputs = {key: _number(value) for key, value in state.optimal.metrics.items()}
            optimal = {"name": state.optimal.name,
                       "parameters": {key: _number(value)
                                      for key, value in state.optimal.parameters.items()},
                       "metrics": dict(outputs)}
        steps = {trial.name: (trial.phase, trial_summary(trial))
                 for trial in state.trials.values()}
        return RunStatus(state.name or name, state.phase, state.phase in FINAL_PHASES,
                         f"Katib experiment {state.name or name}", state.message, steps,
                         outputs, optimal=optimal)

    def logs(self, name: str, step: str, connection: Mapping[str, Any]) -> str:
        """What ``STEP`` of one trial printed: ``step`` is ``TRIAL/STEP``.

        A trial's Workflow has the trial's name, so this is that Workflow's step log.
        """
        from cellpipe.targets.argo.submit import ArgoClient

        trial, sep, step_name = step.partition("/")
        if not sep or not trial or not step_name:
            raise CellpipeError(f"experiment {name!r} runs its steps in trials: name one",
                                step=step, hint=f"ask for TRIAL/{step or 'STEP'} (cellpipe "
                                f"status {name} --target katib lists the trials)")
        return ArgoClient(namespace=connection.get("namespace")).logs(trial, step_name)

    def exit_code(self, status: str) -> int:
        """0 for ``Succeeded``, 124 for ``Timeout`` (as timeout(1)), 1 otherwise."""
        from cellpipe.targets.katib.client import exit_code

        return exit_code(status)


def _number(text: str) -> Any:
    """A value Katib keeps as text, as a number when it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
