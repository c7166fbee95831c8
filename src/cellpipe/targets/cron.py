"""Check what a schedule is made of, before anything is compiled or sent to a cluster.

A cron expression has the five fields of crontab(5), as Argo's CronWorkflow controller and
Kubeflow Pipelines' scheduler read them (both through the Go ``robfig/cron`` parser):
minute, hour, day of month, month, day of week. Each field is ``*`` (or ``?`` in the two
day fields), a value, a range ``a-b``, any of those with a step ``/n``, or a comma list of
them; months and weekdays may be named (``JAN``, ``MON-FRI``). The descriptors
``@yearly`` … ``@hourly`` are written out as the five fields they stand for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cellpipe.errors import CellpipeError
from cellpipe.targets.base import CONCURRENCY_POLICIES, ConcurrencyPolicy

__all__ = ["check_concurrency_policy", "check_cron", "check_timezone"]

_EXAMPLE = "'0 3 * * *' runs at 03:00 every day, '*/15 * * * 1-5' every 15 minutes on weekdays"
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_ITEM = re.compile(r"(?P<range>\*|\?|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>\w+))?")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # value names, the first one meaning ``low``
    any_mark: bool = False  # whether ``?`` is allowed

    def value(self, text: str) -> int | None:
        if text.isdigit():
            number = int(text)
            return number if self.low <= number <= self.high else None
        upper = text.upper()
        return self.names.index(upper) + self.low if upper in self.names else None

    def allowed(self) -> str:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{named}"


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31, any_mark=True),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 6, _WEEKDAYS, any_mark=True),
)


def check_cron(expression: str) -> str:
    """The cron expression with its fields single-spaced; descriptors written out.

    Raises:
        CellpipeError: It has not five fields, or a field is not one ``robfig/cron``
            reads; the message names the field (number and name) and the hint how to write it.
    """
    text = " ".join(str(expression).split())
    if text.startswith("@"):
        if text.lower() in _DESCRIPTORS:
            return _DESCRIPTORS[text.lower()]
        raise CellpipeError(
            f"cron expression {expression!r}: unknown descriptor {text!r}",
            hint=f"use one of {', '.join(sorted(set(_DESCRIPTORS)))}, or five fields: "
            + _EXAMPLE)
    fields = text.split(" ") if text else []
    if len(fields) != len(_FIELDS):
        extra = (" (Kubernetes and Argo take no seconds field: drop the first one)"
                 if len(fields) == 6 else "")
        raise CellpipeError(
            f"cron expression {expression!r} has {len(fields)} field(s); a schedule has 5: "
            "minute hour day-of-month month day-of-week" + extra,
            hint=f"write five fields separated by spaces, e.g. {_EXAMPLE}")
    for number, (field, text_field) in enumerate(zip(_FIELDS, fields, strict=True), start=1):
        problem = _field_problem(field, text_field)
        if problem:
            raise CellpipeError(
                f"cron expression {expression!r}: field {number} ({field.name}) is "
                f"{text_field!r}: {problem}",
                hint=f"write the {field.name} as *, a value in {field.allowed()}, a range "
                f"a-b, a step */n or a-b/n, or a comma list; e.g. {_EXAMPLE}")
    return text


def _field_problem(field: _Field, text: str) -> str:
    """Why ``text`` is not a valid ``field``, or ""."""
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return f"{item!r} is not a value, range or step" if item else "an empty list item"
        span, step = match["range"], match["step"]
        if span == "?" and not field.any_mark:
            return "'?' is only for the day-of-month and day-of-week fields"
        if span not in ("*", "?"):
            low_text, _, high_text = span.partition("-")
            low = field.value(low_text)
            high = field.value(high_text) if high_text else low
            for part, value in ((low_text, low), (high_text, high)):
                if part and value is None:
                    return f"{part!r} is not in {field.allowed()}"
            assert low is not None and high is not None
            if low > high:
                return f"the range {span!r} runs backwards"
        if step is not None and (not step.isdigit() or int(step) < 1):
            return f"the step {step!r} is not a whole number of at least 1"
    return ""


def check_timezone(name: str) -> str:
    """An IANA time zone name (``Europe/Berlin``, ``UTC``), checked where a tz database is.

    Raises:
        CellpipeError: The name is not in the machine's time zone database.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    text = str(name).strip()
    known = available_timezones()
    if not known:  # no tz database here: the cluster is the judge
        return text
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        from cellpipe.core.diagnostics import did_you_mean

        raise CellpipeError(
            f"unknown time zone {name!r}",
            hint=did_you_mean(text, known)
            or "use an IANA time zone name, e.g. 'Europe/Berlin', 'America/New_York' or 'UTC'",
        ) from None
    return text


def check_concurrency_policy(policy: str) -> ConcurrencyPolicy:
    """``Allow``, ``Forbid`` or ``Replace`` (any case): what to do when a run is still going.

    Raises:
        CellpipeError: It is none of the three.
    """
    for known in CONCURRENCY_POLICIES:
        if str(policy).lower() == known.lower():
            return known
    raise CellpipeError(
        f"unknown concurrency policy {policy!r}",
        hint="use Forbid (skip a run while the last one is going), Allow (run both) or "
        "Replace (stop the last one)")
