"""One error payload: what a step's result holds is what the error was, and reads back."""

from __future__ import annotations

from cellpipe.errors import CellpipeError, MissingDependencyError, PipelineError
from cellpipe.marshal.errors import ArtifactCorruptedError


def test_an_error_round_trips_through_its_dict_as_its_own_class():
    error = ArtifactCorruptedError("the digest differs", step="load", variable="df",
                                   hint="run the step again")
    data = error.to_dict(kind="infrastructure")
    assert data["kind"] == "infrastructure" and data["type"] == "ArtifactCorruptedError"
    assert {k: data[k] for k in ("message", "step", "variable", "hint")} == {
        "message": "the digest differs", "step": "load", "variable": "df",
        "hint": "run the step again"}
    back = CellpipeError.from_dict(data)
    assert type(back) is ArtifactCorruptedError
    assert str(back) == str(error)


def test_an_unknown_or_differently_built_class_reads_back_as_a_cellpipe_error():
    assert type(CellpipeError.from_dict({"type": "NoSuchError", "message": "m"})) is \
        CellpipeError
    pipeline = PipelineError("cannot be a pipeline", [], cell=2).to_dict()
    back = CellpipeError.from_dict(pipeline)
    assert isinstance(back, CellpipeError) and back.cell == 2
    missing = MissingDependencyError.for_extra("nbconvert", "report", "Rendering").to_dict()
    assert "pip install" in CellpipeError.from_dict(missing).hint


def test_a_step_error_records_only_what_is_known_and_an_exception_keeps_its_traceback():
    from cellpipe.errors import StepError

    assert StepError("user", "ValueError: no", cell=2, line=None).to_dict() == {
        "kind": "user", "message": "ValueError: no", "cell": 2}
    try:
        {}["missing"]
    except KeyError as exc:
        data = StepError.of_exception(exc).to_dict()
    assert data["kind"] == "infrastructure" and data["message"] == "KeyError: 'missing'"
    assert 'in test_a_step_error' in data["traceback"]
