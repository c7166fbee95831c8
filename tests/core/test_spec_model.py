"""The typed spec: frozen objects that read back exactly the document they were built from.

Every consumer (runtime, engines, targets, server, magics) takes a ``PipelineSpec``; these
tests hold the model to what they rely on: ``from_dict(to_dict())`` is the same spec, the
JSON is the golden text byte for byte, a bad document is refused naming the field, and
nothing can change an object once built.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from cellpipe import api
from cellpipe.core.spec import PipelineSpec, StepSettings, thaw
from cellpipe.errors import CellpipeError, SpecError
from tests.conftest import ROOT, make_nb, sample_paths

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_a_golden_spec_reads_back_to_the_same_bytes(path):
    text = (GOLDEN / f"{path.stem}.spec.json").read_text(encoding="utf-8")
    spec = PipelineSpec.from_json(text)
    assert spec.to_json() == text
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def test_a_spec_written_before_the_prelude_field_gets_its_prelude_from_the_code():
    text = (GOLDEN / "tabular_tags.spec.json").read_text(encoding="utf-8")
    data = json.loads(text)
    preludes = [step.pop("prelude") for step in data["steps"]]
    legacy = PipelineSpec.from_dict(data)
    assert [step.prelude for step in legacy.steps] == preludes
    # the code still starts with the prelude, and each cell where its code_map says
    for step in legacy.steps:
        assert step.code.startswith(step.prelude)
        lines = step.code.split("\n")
        for span, cell in zip(step.code_map, step.cells, strict=True):
            assert lines[span.start - 2] == f"# cell {cell.index + 1}"


def test_objects_are_frozen_and_hold_no_mutable_containers():
    spec = api.compile_spec(make_nb(("parameters", "layers = [1, 2]\nopts = {'a': 1}"),
                                    ("step:a", "x = layers[0]"), ("step:b", "y = x + opts['a']")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.steps[0].name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.steps[1].reads["x"] = "b"  # type: ignore[index]
    layers = spec.parameter("layers")
    assert layers is not None and layers.default == (1, 2)
    with pytest.raises(TypeError):
        spec.parameter("opts").default["a"] = 2  # type: ignore[index,union-attr]
    # the plain copies are the notebook's literals, free to change
    copy = layers.default_copy
    copy.append(3)
    assert layers.default_copy == [1, 2] and spec.defaults == {"layers": [1, 2], "opts": {"a": 1}}

    def mutable(value: object) -> bool:
        if isinstance(value, list | dict | set):
            return True
        if dataclasses.is_dataclass(value):
            return any(mutable(getattr(value, f.name)) for f in dataclasses.fields(value))
        if isinstance(value, tuple):
            return any(mutable(v) for v in value)
        return False

    assert not mutable(spec)


def test_from_dict_refuses_a_bad_document_naming_the_field():
    data = api.compile_spec(make_nb(("step:a", "x = 1"), ("step:b", "y = x"))).to_dict()
    data["steps"][1]["upstream"] = ["Not A Step"]
    with pytest.raises(SpecError, match=r"steps\[1\]\.upstream\[0\]"):
        PipelineSpec.from_dict(data)
    with pytest.raises(SpecError, match="not JSON"):
        PipelineSpec.from_json("{")


def test_lookups_and_a_steps_slice():
    spec = api.compile_spec(make_nb(("parameters", "k = 2"), ("step:a", "x = k"),
                                    ("step:b", "y = x + 1"), ("step:c", "z = x * 2")))
    assert spec.step_names == ("a", "b", "c")
    assert spec.step("b").upstream == ("a",)
    assert spec.consumers("a") == {"x": ["b", "c"]}
    with pytest.raises(CellpipeError, match="no step 'd'") as caught:
        spec.step("d")
    assert "a, b, c" in (caught.value.hint or "")
    part = spec.slice("b")
    assert part.step_names == ("b",) and part.names is None and part.pipeline.imports is None
    assert part.notebook.sha256 == spec.step("b").digest() != spec.notebook.sha256
    assert [e.target for e in part.edges] == ["b"]  # edges into b; none leave it
    assert PipelineSpec.from_dict(part.to_dict()) == part


def test_settings_know_their_defaults_and_write_only_what_was_set():
    settings = StepSettings(retries=2, cache=False, inputs=("out",))
    assert settings.attempts == 3 and not settings.cacheable
    assert StepSettings().attempts == 1 and StepSettings().cacheable
    assert settings.to_dict() == {"retries": 2, "cache": False, "inputs": ["out"]}
    assert thaw(settings.inputs) == ["out"]
