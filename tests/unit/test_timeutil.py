"""Times and durations as users write them, and the errors they get when they get it wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backwatch.timeutil import (
    human_ago,
    human_bytes,
    human_duration,
    iso,
    parse_duration,
    parse_time,
)

MAY_1 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T02:00:00Z",
        "2026-05-01T02:00:00z",
        "2026-05-01T02:00:00+00:00",
        "2026-05-01T04:00:00+02:00",
        "2026-04-30T18:00:00-08:00",
        "2026-05-01T02:00:00",  # naive means UTC
        "2026-05-01 02:00:00",
        " 2026-05-01T02:00:00Z ",
        "2026-05-01T02:00:00.000Z",
    ],
)
def test_iso_times(text):
    assert parse_time(text) == MAY_1


def test_seed001_timestamp_with_offset():
    assert (
        parse_time("2026-01-07T02:00:00-08:00")
        == datetime(2026, 1, 7, 10, 0, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize("value", [MAY_1, int(MAY_1), str(int(MAY_1)), f"{MAY_1:.3f}"])
def test_epoch_seconds(value):
    assert parse_time(value) == MAY_1


def test_fractional_seconds_are_kept():
    assert parse_time("2026-05-01T02:00:00.250Z") == MAY_1 + 0.25


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("yesterday", "not an ISO 8601 time"),
        ("2026-13-01T00:00:00Z", "not an ISO 8601 time"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (True, "boolean"),
        (None, "ISO 8601"),
        ([], "ISO 8601"),
        (-1, "negative"),
        ("-5", "negative"),
        (float("nan"), "finite"),
        ("nan", "finite"),
        (float("inf"), "finite"),
        ("inf", "finite"),
        ("-inf", "finite"),
        (1e20, "out of range"),
        ("1e20", "out of range"),
    ],
)
def test_bad_times_name_the_field(value, words):
    with pytest.raises(ValueError) as err:
        parse_time(value, field="started_at")
    assert "started_at" in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("2H", 7200),
        ("120", 120),
        (45, 45),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["soon", "", " ", "1x", "h", "1h30", "30m1", "-1h", -5, "-5", True, None, "nan", "inf",
     float("nan"), float("inf"), [], "1h-30m", "200y", "99999w", 1e300],
)  # fmt: skip
def test_bad_durations(value):
    with pytest.raises(ValueError) as err:
        parse_duration(value, field="jobs[1].grace")
    assert "jobs[1].grace" in str(err.value)


def test_iso_output():
    assert iso(MAY_1) == "2026-05-01T02:00:00Z"
    assert iso(MAY_1 + 0.25) == "2026-05-01T02:00:00.250Z"
    assert iso(None) is None
    assert parse_time(iso(MAY_1 + 0.5)) == MAY_1 + 0.5


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (1e308, "9999-12-31T23:59:59Z"),
        (float("inf"), "9999-12-31T23:59:59Z"),
        (9.9e15, "9999-12-31T23:59:59Z"),
        (-1e308, "1970-01-01T00:00:00Z"),
        (-5.0, "1970-01-01T00:00:00Z"),
        (float("nan"), None),
    ],
)
def test_iso_of_a_stored_time_out_of_range_is_clipped(stored, shown):
    # a row stored before times were bounded must not take a page down (issue 14), and
    # what is shown reads back
    assert iso(stored) == shown
    if shown is not None:
        parse_time(shown)


def test_human_formats_of_stored_figures_out_of_bounds():
    assert human_duration(float("inf")) == "-"
    assert human_duration(float("nan")) == "-"
    assert human_duration(1e308) == "> 100 years"
    assert human_bytes(float("nan")) == "-"
    assert human_ago(float("nan"), 0.0) == "unknown"


def test_human_formats():
    assert human_duration(None) == "-"
    assert human_duration(5) == "5.0s"
    assert human_duration(5400) == "1h30m"
    assert human_duration(3 * 86400) == "3d00h"
    assert human_bytes(None) == "-"
    assert human_bytes(512) == "512 B"
    assert human_bytes(2912345678) == "2.7 GB"
