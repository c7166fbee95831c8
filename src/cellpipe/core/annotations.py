"""Reading step annotations from cell tags and ``%%step`` headers, statically.

The grammar (README's annotation reference says the same):

=====================  ============================  ==========================================
tag                    ``%%step`` form               meaning
=====================  ============================  ==========================================
``step:NAME``          ``%%step NAME``               the cell starts or continues step NAME
``after:A`` (``A:B``)  ``--after A B``               explicit upstream steps
``parameters``         —                             the hyperparameter cell
``metrics``            —                             the metrics cell (runs in the step above)
``skip``               ``--skip``                    not part of the pipeline
``image:REF``          ``--image REF``               container image of the step
``gpu:N``              ``--gpu N``                   GPUs
``cpu:N``              ``--cpu N``                   CPU request (``2``, ``0.5``, ``500m``)
``memory:SIZE``        ``--memory SIZE``             memory request (``512Mi``, ``2Gi``, ``1G``)
``retries:N``          ``--retries N``               retries on failure
``timeout:SECONDS``    ``--timeout S``               seconds (``90``, ``30m``, ``2h`` accepted)
``cache:off``          ``--cache off``               never reuse a cached result
``inputs:PATH``        ``--inputs A,B``              files it reads that cellpipe cannot see
``model:NAME``         ``--model NAME``              variable NAME is a model: a cluster
                                                     target's model artifact (one tag each)
=====================  ============================  ==========================================

Kale's tags are aliases: ``block:`` = ``step:``, ``prev:`` = ``after:``,
``pipeline-parameters`` = ``parameters``, ``pipeline-metrics`` = ``metrics``,
``limit:KEY:VALUE`` = a resource setting; ``imports`` and ``functions`` are accepted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from cellpipe.core.diagnostics import Diagnostic

STEP_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^(\d+(\.\d+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
_HEADER = re.compile(r"^\s*%%step\b(?P<args>[^\n]*)(?:\n|$)")
_SETTING_KEYS = ("image", "gpu", "cpu", "memory", "retries", "timeout", "cache", "inputs",
                 "model")
# Settings that add up over a step's tags and cells (one tag per item: tags hold no comma).
LIST_SETTINGS = ("inputs", "model")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROLE_TAGS = {
    "parameters": "parameters",
    "pipeline-parameters": "parameters",
    "metrics": "metrics",
    "pipeline-metrics": "metrics",
    "skip": "skip",
}
_ACCEPTED = {"imports", "functions"}


@dataclass(frozen=True)
class CellAnnotation:
    """What one cell's tags and header say.

    Attributes:
        step: The step this cell starts or continues, if named.
        after: Explicit upstream step names.
        role: ``parameters``, ``metrics``, ``skip`` or ``None``.
        settings: Per-step settings (image, gpu, cpu, memory, retries, timeout, cache;
            the lists inputs and model).
        body: The cell source without a ``%%step`` header.
        body_line_offset: Lines removed from the top of the source (1 with a header).
        from_header: True when a ``%%step`` header was present.
    """

    step: str | None = None
    after: tuple[str, ...] = ()
    role: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    body_line_offset: int = 0
    from_header: bool = False


def normalize_step_name(raw: str) -> str:
    """Suggest a valid step name for ``raw`` (``Train Model`` → ``train-model``)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-_")
    return name[:63].strip("-_") or "step"


def parse_cell(
    tags: tuple[str, ...], source: str, cell_index: int, diagnostics: list[Diagnostic]
) -> CellAnnotation:
    """Read a cell's annotations from its tags and ``%%step`` header.

    Problems are appended to ``diagnostics``; the returned annotation keeps what was valid.
    """
    step: str | None = None
    after: list[str] = []
    role: str | None = None
    settings: dict[str, Any] = {}

    def report(code: str, message: str, hint: str | None = None, line: int | None = None) -> None:
        diagnostics.append(
            Diagnostic("error", code, message, cell=cell_index, line=line, hint=hint)
        )

    def set_step(name: str, origin: str, line: int | None = None) -> None:
        nonlocal step
        if not STEP_NAME.match(name):
            report(
                "CP101",
                f"{origin} names step {name!r}, which is not a valid step name",
                f"use lowercase letters, digits, '-' or '_', e.g. {normalize_step_name(name)!r}",
                line,
            )
            name = normalize_step_name(name)
        if step is not None and step != name:
            report(
                "CP104",
                f"the cell is tagged for two steps, {step!r} and {name!r}",
                "keep one step tag per cell",
                line,
            )
            return
        step = name

    def set_setting(key: str, value: str, origin: str, line: int | None = None) -> None:
        parsed, problem = _parse_setting(key, value)
        if problem:
            report("CP102", f"{origin}: {problem}", _SETTING_HINTS[key], line)
        elif key in LIST_SETTINGS:  # repeatable: one tag per item (tags hold no comma)
            settings[key] = list(dict.fromkeys([*settings.get(key, []), *parsed]))
        else:
            settings[key] = parsed

    for tag in tags:
        lowered = tag.lower()
        if lowered in _ROLE_TAGS:
            role = _ROLE_TAGS[lowered]
            continue
        if lowered in _ACCEPTED:
            continue
        key, sep, value = tag.partition(":")
        key = key.lower()
        if not sep:
            continue  # a tag for something else (e.g. "hide-input"): not ours
        if key in ("step", "block"):
            set_step(value, f"tag {tag!r}")
        elif key in ("after", "prev"):
            after.extend(v for v in value.split(":") if v)
        elif key in _SETTING_KEYS:
            set_setting(key, value, f"tag {tag!r}")
        elif key == "limit":
            _kale_limit(value, tag, set_setting, report)

    body = source
    offset = 0
    from_header = False
    header = _HEADER.match(source)
    if header:
        from_header = True
        consumed = source[: header.end()]
        offset = consumed.count("\n") if consumed.endswith("\n") else consumed.count("\n") + 1
        body = source[header.end() :]
        line = source[: header.start("args")].count("\n") + 1
        _parse_header(header.group("args"), line, set_step, set_setting, after, report)
        if "--skip" in header.group("args").split():
            role = "skip"
    return CellAnnotation(
        step=step,
        after=tuple(dict.fromkeys(after)),
        role=role,
        settings=settings,
        body=body,
        body_line_offset=offset,
        from_header=from_header,
    )


_SETTING_HINTS = {
    "image": "give an image reference, e.g. image:registry.local/team/train:1.0",
    "gpu": "give a whole number of GPUs, e.g. gpu:1",
    "cpu": "give CPUs as a number or millicores, e.g. cpu:2, cpu:0.5 or cpu:500m",
    "memory": "give a Kubernetes quantity, e.g. memory:512Mi or memory:2Gi",
    "retries": "give a whole number, e.g. retries:2",
    "timeout": "give seconds, e.g. timeout:600 (30m and 2h are accepted too)",
    "cache": "use cache:off (or cache:on)",
    "inputs": "give a file, folder or glob pattern relative to the notebook, e.g. "
              "inputs:data/*.csv (one tag per path; --inputs A,B on %%step)",
    "model": "name the variable that holds the model, e.g. model:clf (one tag per model; "
             "--model NAME on %%step)",
}


def _parse_setting(key: str, value: str) -> tuple[Any, str | None]:
    value = value.strip()
    if key == "image":
        if not value or any(c.isspace() for c in value):
            return None, f"image reference {value!r} is empty or has spaces"
        return value, None
    if key in ("gpu", "retries"):
        if not value.isdigit():
            return None, f"{key} must be a whole number, not {value!r}"
        return int(value), None
    if key == "cpu":
        if not _QUANTITY.match(value) or value.endswith(("i", "k", "M", "G", "T", "P")):
            return None, f"cpu {value!r} is not a CPU quantity"
        return value, None
    if key == "memory":
        if not _QUANTITY.match(value) or value.endswith("m"):
            return None, f"memory {value!r} is not a memory quantity"
        return value, None
    if key == "timeout":
        match = _DURATION.match(value)
        if not match:
            return None, f"timeout {value!r} is not a duration"
        return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)], None
    if key == "cache":
        if value.lower() not in ("off", "on", "false", "true"):
            return None, f"cache {value!r} must be 'off' or 'on'"
        return value.lower() in ("on", "true"), None
    if key == "inputs":
        paths = [v.strip() for v in value.split(",") if v.strip()]
        if not paths:
            return None, "inputs names no file"
        return paths, None
    if key == "model":
        names = [v.strip() for v in value.split(",") if v.strip()]
        bad = [n for n in names if not _IDENTIFIER.match(n)]
        if not names or bad:
            return None, f"model {value!r} is not a variable name"
        return names, None
    return None, f"unknown setting {key!r}"  # pragma: no cover - keys are checked by callers


def _kale_limit(value: str, tag: str, set_setting: Any, report: Any) -> None:
    # Kale: limit:nvidia.com/gpu:1, limit:amd.com/gpu:2, limit:memory:2Gi, limit:cpu:1
    resource, sep, amount = value.rpartition(":")
    if not sep:
        report("CP102", f"tag {tag!r} is not limit:RESOURCE:AMOUNT", "e.g. limit:nvidia.com/gpu:1")
    elif resource.endswith("/gpu") or resource == "gpu":
        set_setting("gpu", amount, f"tag {tag!r}")
    elif resource in ("memory", "cpu"):
        set_setting(resource, amount, f"tag {tag!r}")
    else:
        report(
            "CP102",
            f"tag {tag!r} limits an unknown resource {resource!r}",
            "use gpu, cpu or memory",
        )


def _parse_header(
    args: str, line: int, set_step: Any, set_setting: Any, after: list[str], report: Any
) -> None:
    try:
        words = shlex.split(args, comments=True)
    except ValueError as exc:
        report("CP103", f"%%step header cannot be split into words: {exc}", None, line)
        return
    usage = (
        "%%step NAME [--after A B] [--gpu N] [--cpu N] [--memory SIZE] [--image REF] "
        "[--retries N] [--timeout S] [--cache off] [--inputs PATHS] [--model NAME] [--skip]"
    )
    i = 0
    positional: list[str] = []
    while i < len(words):
        word = words[i]
        if word == "--skip":
            i += 1
        elif word == "--after":
            i += 1
            start = i
            while i < len(words) and not words[i].startswith("--"):
                after.append(words[i])
                i += 1
            if i == start:
                report("CP103", "--after needs at least one step name", usage, line)
        elif word.startswith("--"):
            key, _, inline = word[2:].partition("=")
            if key not in _SETTING_KEYS:
                report("CP103", f"%%step has no option {word!r}", usage, line)
                i += 1
                continue
            if inline:
                value = inline
                i += 1
            elif i + 1 < len(words) and not words[i + 1].startswith("--"):
                value = words[i + 1]
                i += 2
            else:
                report("CP103", f"{word} needs a value", usage, line)
                i += 1
                continue
            set_setting(key, value, f"%%step {word}", line)
        else:
            positional.append(word)
            i += 1
    if len(positional) > 1:
        report("CP103", f"%%step takes one step name, got {positional}", usage, line)
    if positional:
        set_step(positional[0], "%%step", line)
