"""Katib's own OpenAPI definitions as a JSON Schema that refuses fields it does not define.

Katib's CRD accepts any object (``x-kubernetes-preserve-unknown-fields``), so the swagger
file of its ``kubeflow.org/v1beta1`` API (in the project's shared folder,
``schemas/katib/v1beta1-swagger.json``) is the statement of its fields. Swagger 2.0
definitions are JSON Schema in all but name, with two gaps this module fills:

- they never say ``additionalProperties``, so a misspelt field (``parallelTrialCounts``)
  would pass: every definition that lists ``properties`` is made closed;
- they refer to Kubernetes types the file does not define: ``v1.ObjectMeta`` gets a closed
  stand-in with its fields, ``v1.Time`` is a string, and ``v1.unstructured.Unstructured``
  (the trial template: an Argo Workflow, checked against Argo's models elsewhere), and the
  types the Experiment does not use here, are any object.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import ROOT

SWAGGER = "schemas/katib/v1beta1-swagger.json"

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# Kubernetes' ObjectMeta fields (k8s.io/apimachinery meta/v1), closed like the rest.
OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"}, "generateName": {"type": "string"},
        "namespace": {"type": "string"}, "labels": _STRING_MAP, "annotations": _STRING_MAP,
        "uid": {"type": "string"}, "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"}, "creationTimestamp": {"type": "string"},
        "deletionTimestamp": {"type": "string"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": {"type": "string"},
    },
}
STAND_INS = {
    "v1.ObjectMeta": OBJECT_META,
    "v1.ListMeta": {"type": "object"},
    "v1.Time": {"type": "string"},
    "v1.unstructured.Unstructured": {"type": "object"},
    "v1.Container": {"type": "object"},
    "v1.HTTPGetAction": {"type": "object"},
}


def swagger_path() -> Path:
    """The swagger file: $CELLPIPE_KATIB_SWAGGER, else the shared folder beside the repo."""
    given = os.environ.get("CELLPIPE_KATIB_SWAGGER")
    candidates = [Path(given)] if given else [ROOT.parent / "shared" / SWAGGER,
                                              Path("/work/shared") / SWAGGER]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Katib's swagger file is not at {', '.join(map(str, candidates))}; "
                            "set CELLPIPE_KATIB_SWAGGER to it")


def _closed(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever it lists properties."""
    if isinstance(schema, dict):
        found = {key: _closed(value) for key, value in schema.items()
                 if key != "properties"}
        if "properties" in schema:
            found["properties"] = {name: _closed(value)
                                   for name, value in schema["properties"].items()}
            found.setdefault("additionalProperties", False)
        return found
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def definitions() -> dict[str, Any]:
    """Every definition of the file, closed, with the stand-ins for Kubernetes' types."""
    swagger = json.loads(swagger_path().read_text(encoding="utf-8"))
    found = {name: _closed(copy.deepcopy(schema))
             for name, schema in swagger["definitions"].items()}
    missing = set(STAND_INS) - set(found)
    return {**found, **{name: STAND_INS[name] for name in missing}}


def validator(definition: str = "v1beta1.Experiment") -> jsonschema.Draft4Validator:
    """A validator of one of the file's definitions (the Experiment by default)."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions()}
    return jsonschema.Draft4Validator(schema)


def errors(manifest: Any, definition: str = "v1beta1.Experiment") -> list[str]:
    """What is wrong with ``manifest`` by Katib's definitions: ``path: message`` lines."""
    return sorted(f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                  for error in validator(definition).iter_errors(manifest))
