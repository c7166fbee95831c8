"""Checking a schedule before anything is compiled: cron fields, time zones, policies."""

from __future__ import annotations

import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.cron import check_concurrency_policy, check_cron, check_timezone


@pytest.mark.parametrize(("given", "checked"), [
    ("0 3 * * *", "0 3 * * *"),
    ("  */15  *  * *   1-5 ", "*/15 * * * 1-5"),
    ("0,30 6-18/2 1,15 JAN-mar ?", "0,30 6-18/2 1,15 JAN-mar ?"),
    ("5/10 0 ? * MON,wed,FRI", "5/10 0 ? * MON,wed,FRI"),
    ("59 23 31 12 6", "59 23 31 12 6"),
    ("@daily", "0 0 * * *"),
    ("@HOURLY", "0 * * * *"),
    ("@weekly", "0 0 * * 0"),
])
def test_valid_expressions_come_back_single_spaced_with_descriptors_written_out(given, checked):
    assert check_cron(given) == checked


@pytest.mark.parametrize(("given", "problem", "hint"), [
    ("60 * * * *", r"field 1 \(minute\) is '60': '60' is not in 0-59", "0-59"),
    ("0 25 * * *", r"field 2 \(hour\) is '25'", "0-23"),
    ("0 3 0 * *", r"field 3 \(day of month\) is '0'", "1-31"),
    ("0 3 * 13 *", r"field 4 \(month\) is '13'", "JAN-DEC"),
    ("0 3 * FOO *", r"field 4 \(month\) is 'FOO'", "1-12"),
    ("0 3 * * 7", r"field 5 \(day of week\) is '7'", "0-6 or SUN-SAT"),
    ("0 3 * * 5-1", "runs backwards", "range"),
    ("*/0 3 * * *", "step '0' is not a whole number", "step"),
    ("0 ? * * *", "'?' is only for the day", "hour"),
    ("0 3,, * * *", "an empty list item", "comma list"),
    ("0 3 * * L", r"field 5 \(day of week\) is 'L'", "day of week"),
])
def test_a_bad_field_is_named_by_number_and_name_with_how_to_write_it(given, problem, hint):
    with pytest.raises(CellpipeError, match=problem) as info:
        check_cron(given)
    assert hint in str(info.value.hint)
    assert "0 3 * * *" in str(info.value.hint)  # an example to copy


def test_the_wrong_number_of_fields_says_which_five_there_are():
    with pytest.raises(CellpipeError, match="has 3 field") as info:
        check_cron("0 3 *")
    assert "minute hour day-of-month month day-of-week" in str(info.value)
    with pytest.raises(CellpipeError, match="no seconds field"):
        check_cron("0 0 3 * * *")
    with pytest.raises(CellpipeError, match="has 0 field"):
        check_cron("   ")
    with pytest.raises(CellpipeError, match="unknown descriptor") as info:
        check_cron("@every 1h")
    assert "@daily" in str(info.value.hint)


def test_time_zones_are_iana_names_with_a_suggestion_for_a_typo():
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("UTC") == "UTC"
    with pytest.raises(CellpipeError, match="unknown time zone 'Europe/Berln'") as info:
        check_timezone("Europe/Berln")
    assert "Europe/Berlin" in str(info.value.hint)
    with pytest.raises(CellpipeError, match="unknown time zone"):
        check_timezone("../../etc/passwd")


def test_concurrency_policies_are_read_in_any_case():
    assert check_concurrency_policy("forbid") == "Forbid"
    assert check_concurrency_policy("REPLACE") == "Replace"
    with pytest.raises(CellpipeError, match="unknown concurrency policy 'Queue'") as info:
        check_concurrency_policy("Queue")
    assert "Forbid" in str(info.value.hint)


def test_the_api_checks_everything_at_once():
    cron, options = api.check_schedule(" 0 3 * * * ", name="nightly", timezone="Asia/Tokyo",
                                       concurrency_policy="allow", suspend=True)
    assert cron == "0 3 * * *"
    assert options == api.ScheduleOptions("nightly", "Asia/Tokyo", "Allow", True)
