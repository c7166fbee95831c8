"""The annotation grammar: tags, %%step headers, Kale aliases, settings validation."""

from __future__ import annotations

import pytest

from cellpipe.core.annotations import parse_cell


def parse(tags=(), source="x = 1\n"):
    diagnostics = []
    note = parse_cell(tuple(tags), source, 0, diagnostics)
    return note, diagnostics


def test_step_and_after_tags():
    note, diags = parse(["step:train", "after:load", "after:clean"])
    assert (note.step, note.after, diags) == ("train", ("load", "clean"), [])


@pytest.mark.parametrize(
    ("tag", "role"),
    [
        ("parameters", "parameters"),
        ("metrics", "metrics"),
        ("skip", "skip"),
        ("pipeline-parameters", "parameters"),
        ("pipeline-metrics", "metrics"),
    ],
)
def test_role_tags_and_kale_aliases(tag, role):
    assert parse([tag])[0].role == role


def test_kale_block_and_prev_including_old_multi_form():
    note, diags = parse(["block:train_model", "prev:load_data:clean_data", "prev:features"])
    assert note.step == "train_model"
    assert note.after == ("load_data", "clean_data", "features")
    assert diags == []


def test_kale_limits_and_accepted_tags():
    note, diags = parse(
        [
            "block:a",
            "limit:nvidia.com/gpu:2",
            "limit:memory:2Gi",
            "imports",
            "functions",
            "hide-input",
        ]
    )
    assert note.settings == {"gpu": 2, "memory": "2Gi"}
    assert diags == []


def test_settings_are_typed():
    note, diags = parse(
        [
            "step:a",
            "image:reg.local/team/img:1.2",
            "gpu:1",
            "cpu:500m",
            "memory:512Mi",
            "retries:3",
            "timeout:30m",
            "cache:off",
        ]
    )
    assert diags == []
    assert note.settings == {
        "image": "reg.local/team/img:1.2",
        "gpu": 1,
        "cpu": "500m",
        "memory": "512Mi",
        "retries": 3,
        "timeout": 1800,
        "cache": False,
    }


@pytest.mark.parametrize(
    "tag",
    [
        "gpu:one",
        "cpu:2Gi",
        "memory:lots",
        "retries:-1",
        "timeout:soon",
        "cache:maybe",
        "memory:100m",
    ],
)
def test_bad_settings_are_errors_with_a_fix(tag):
    _, diags = parse(["step:a", tag])
    assert [d.code for d in diags] == ["CP102"]
    assert diags[0].hint and diags[0].cell == 0


def test_invalid_step_name_suggests_a_valid_one():
    note, diags = parse(["step:Load Data"])
    assert diags[0].code == "CP101"
    assert "'load-data'" in diags[0].hint
    assert note.step == "load-data"


def test_two_step_tags_on_one_cell():
    _, diags = parse(["step:a", "step:b"])
    assert [d.code for d in diags] == ["CP104"]


def test_step_header_is_read_statically_and_stripped():
    source = "%%step train --after load clean --gpu 1 --memory 2Gi --image img:1\nmodel = fit(X)\n"
    note, diags = parse(source=source)
    assert diags == []
    assert note.step == "train" and note.after == ("load", "clean")
    assert note.settings == {"gpu": 1, "memory": "2Gi", "image": "img:1"}
    assert note.body == "model = fit(X)\n" and note.body_line_offset == 1
    assert note.from_header


def test_step_header_skip():
    note, _ = parse(source="%%step --skip\nplot()\n")
    assert note.role == "skip"


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("%%step a --gpus 1", "no option '--gpus'"),
        ("%%step a --after", "needs at least one"),
        ("%%step a b", "one step name"),
        ("%%step a --gpu", "needs a value"),
        ("%%step a --retries x", "whole number"),
    ],
)
def test_bad_headers_point_at_line_one(header, fragment):
    _, diags = parse(source=header + "\nx = 1\n")
    assert diags, header
    assert fragment in diags[0].message and diags[0].line == 1


def test_header_and_tags_agree_or_conflict():
    assert parse(["step:a"], "%%step a\nx = 1")[1] == []
    assert [d.code for d in parse(["step:a"], "%%step b\nx = 1")[1]] == ["CP104"]
