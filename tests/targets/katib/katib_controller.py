"""What Katib's controller and metrics collector do with an Experiment, played by the tests.

No Katib can run here. These helpers do what Katib's documented behaviour is, on the
objects the tests read back from kmock: replace ``${trialParameters.NAME}`` in the trial
template with a trial's values and name the run after the trial
(``GetRunSpecWithHyperParameters``), parse the metrics file with the File collector's
default TEXT filter, and write Trial and Experiment status as the controller does.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

# Katib's default metrics filter (pkg/metricscollector/v1beta1/common: DefaultFilter); Go's
# regexp and Python's agree on this pattern.
KATIB_FILTER = re.compile(r"([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)")
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"


def katib_parse(text: str, metrics: list[str]) -> dict[str, list[str]]:
    """What Katib's TEXT parser takes from ``text``: in each line that names a metric, the
    ``name=value`` pairs whose name is one; the first word is the time (RFC 3339)."""
    found: dict[str, list[str]] = {}
    for line in text.split("\n"):
        if not any(metric in line for metric in metrics):
            continue
        stamp = line.split(" ", 1)[0]
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        for name, value, *_ in KATIB_FILTER.findall(line):
            if name.strip() in metrics:
                found.setdefault(name.strip(), []).append(value.strip())
    return found


def run_spec(experiment: dict[str, Any], trial: str, namespace: str,
             assignments: dict[str, str]) -> dict[str, Any]:
    """The trial's run object: the template's text with its parameters replaced, named."""
    template = experiment["spec"]["trialTemplate"]
    text = json.dumps(template["trialSpec"])
    for parameter in template["trialParameters"]:
        text = text.replace(f"${{trialParameters.{parameter['name']}}}",
                            assignments[parameter["reference"]])
    run: dict[str, Any] = json.loads(text)
    run["metadata"].update(name=trial, namespace=namespace)
    return run


def trial_object(experiment: dict[str, Any], trial: str, namespace: str,
                 assignments: dict[str, str]) -> dict[str, Any]:
    """A Trial as Katib's experiment controller creates it."""
    spec = experiment["spec"]
    template = spec["trialTemplate"]
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
        "metadata": {"name": trial, "namespace": namespace,
                     "labels": {EXPERIMENT_LABEL: experiment["metadata"]["name"]}},
        "spec": {
            "objective": spec["objective"],
            "parameterAssignments": [{"name": k, "value": v} for k, v in assignments.items()],
            "runSpec": run_spec(experiment, trial, namespace, assignments),
            "metricsCollector": spec["metricsCollectorSpec"],
            "primaryContainerName": template["primaryContainerName"],
            "primaryPodLabels": template["primaryPodLabels"],
            "successCondition": template["successCondition"],
            "failureCondition": template["failureCondition"],
        },
    }


def condition(kind: str, message: str = "") -> dict[str, Any]:
    """A condition that holds, as Katib writes them."""
    return {"type": kind, "status": "True", "reason": f"Trial{kind}", "message": message,
            "lastUpdateTime": "2026-12-03T10:00:00Z"}


def observation(values: dict[str, str]) -> dict[str, Any]:
    """Katib's observation of one value per metric (latest, min and max the same)."""
    return {"metrics": [{"name": k, "latest": v, "min": v, "max": v}
                        for k, v in values.items()]}
