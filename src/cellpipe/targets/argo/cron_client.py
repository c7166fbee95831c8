"""Create, list and delete Argo CronWorkflows through the Kubernetes API.

:class:`CronWorkflowClient` is an :class:`~cellpipe.targets.argo.submit.ArgoClient` (the
same kubeconfig or in-cluster setup, namespace rules and error messages) that works on the
``argoproj.io/v1alpha1`` ``cronworkflows`` resource instead of ``workflows``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import PIPELINE_LABEL
from cellpipe.targets.argo.submit import GROUP, VERSION, ArgoClient

__all__ = ["CRON_PLURAL", "CronWorkflowClient"]

CRON_PLURAL = "cronworkflows"


class CronWorkflowClient(ArgoClient):
    """CronWorkflows in one namespace of a cluster (see :class:`ArgoClient` for the args)."""

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create the CronWorkflow; returns it as the API server has it."""
        if manifest.get("kind") != "CronWorkflow":
            raise CellpipeError(f"only an Argo CronWorkflow can be scheduled, not kind "
                                f"{manifest.get('kind')!r}")
        body = copy.deepcopy(dict(manifest))
        metadata = body.setdefault("metadata", {})
        self._place(metadata, "CronWorkflow")
        name = str(metadata.get("name") or "")
        if not name:
            raise CellpipeError("a CronWorkflow needs metadata.name",
                                hint="give the schedule a name (--name NAME)")
        self._check_crd(CRON_PLURAL)
        created = self._crons(f"create CronWorkflow {name!r}", "create", body)
        if isinstance(created, dict) and created.get("metadata", {}).get("name"):
            return created
        return self.get_cron(name)  # some servers (kmock) answer with an empty body

    def get_cron(self, name: str) -> dict[str, Any]:
        """The CronWorkflow ``name``."""
        found: dict[str, Any] = self._crons(f"get CronWorkflow {name!r}", "get", name)
        return found

    def list_crons(self) -> list[dict[str, Any]]:
        """The CronWorkflows that cellpipe made (labelled with their pipeline), by name."""
        listed = self._crons("list CronWorkflows", "list", label_selector=PIPELINE_LABEL)
        items = [item for item in (listed or {}).get("items") or []
                 if PIPELINE_LABEL in ((item.get("metadata") or {}).get("labels") or {})]
        return sorted(items, key=lambda item: str(item["metadata"].get("name", "")))

    def delete_cron(self, name: str) -> dict[str, Any]:
        """Delete the CronWorkflow ``name`` (its past Workflows stay); returns it as it was."""
        found = self.get_cron(name)
        self._crons(f"delete CronWorkflow {name!r}", "delete", name)
        return found

    def _crons(self, what: str, verb: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._custom, f"{verb}_namespaced_custom_object")
        return self._call(what, method, GROUP, VERSION, self.namespace, CRON_PLURAL,
                          *args, **kwargs)

    def _error(self, exc: Any, what: str) -> CellpipeError:
        """As :meth:`ArgoClient._error`, with the hints said of CronWorkflows."""
        error = super()._error(exc, what)
        status = getattr(exc, "status", None) or 0
        ns = self.namespace
        hints = {
            403: f"your account may not do this in namespace {ns!r}: check 'kubectl auth "
            f"can-i create cronworkflows.argoproj.io -n {ns}' and ask for a Role",
            404: f"no such CronWorkflow in namespace {ns!r}: list them with `cellpipe "
            "schedule --list --target argo`" if "get" in what or "delete" in what else
            f"is Argo installed in namespace {ns!r}? check 'kubectl get crd "
            "cronworkflows.argoproj.io'",
            409: "a CronWorkflow of that name exists: delete it first (`cellpipe schedule "
            "--delete NAME --target argo`) or give this one another --name",
        }
        if status in hints:
            return type(error)(error.message, hint=hints[status])
        return error
