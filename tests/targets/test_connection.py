"""What a target says it needs to reach its cluster (``connection``), and its default."""

from __future__ import annotations

from typing import ClassVar

import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.target import ArgoTarget
from cellpipe.targets.connection import DEFAULT_CONNECTION, ConnectionField, connection_fields
from cellpipe.targets.kfp.target import KfpTarget


def test_the_built_in_targets_declare_what_they_read():
    assert [(f.name, f.required) for f in connection_fields(ArgoTarget)] == [
        ("namespace", False)]
    assert [(f.name, f.required) for f in connection_fields(KfpTarget())] == [
        ("host", True), ("experiment", False), ("namespace", False)]
    assert api.target_connection("kfp") == KfpTarget.connection
    assert list(api.target_connections()) == api.cluster_target_names()


def test_a_target_that_declares_nothing_gets_what_every_target_was_given():
    class Undeclared:
        name: ClassVar[str] = "undeclared"

    assert connection_fields(Undeclared) == DEFAULT_CONNECTION
    assert all(not field.required for field in DEFAULT_CONNECTION)


def test_a_declaration_that_is_no_tuple_of_fields_is_refused_naming_the_target():
    class Sloppy:
        name: ClassVar[str] = "sloppy"
        connection: ClassVar[object] = ("host",)

    with pytest.raises(CellpipeError, match="target 'sloppy' declares connection") as caught:
        connection_fields(Sloppy)
    assert "ConnectionField" in (caught.value.hint or "")


def test_a_field_answers_its_json_form():
    field = ConnectionField("host", required=True, description="the API", example="http://h")
    assert field.to_dict() == {"name": "host", "required": True, "description": "the API",
                               "example": "http://h"}
