"""backwatch watching itself (issue 14, "silent when its own disk is full"), pure parts:
the writer's memory of refused writes, the ``store_unavailable`` rule and the data disk's
free-space floor in ``disk_space``."""

from __future__ import annotations

import sqlite3

from backwatch.domain.rules import RULES, DiskFacts, JobFacts, Thresholds, WriteFacts
from backwatch.store.writer import WriteHealth, refused_by_database

T0 = 1_780_000_000.0
MB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def full_disk_error() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT …", {}, sqlite3.OperationalError("database or disk is full"))


def test_the_writer_remembers_refused_writes_until_they_are_on_record():
    clock = Clock()
    health = WriteHealth(clock)
    assert health.trouble() is None
    for _ in range(3):
        clock.t += 1
        health.failed(full_disk_error())
    trouble = health.trouble()
    assert trouble is not None
    assert (trouble.refused, trouble.failing) == (3, 3)
    assert (trouble.first_failed_at, trouble.last_failed_at) == (T0 + 1, T0 + 3)
    assert trouble.last_error == "database or disk is full"
    health.reported(trouble)  # still failing: an alert about it must stay open
    assert health.trouble() == trouble
    clock.t += 10
    health.stored()  # a write that fitted: on a full disk some may, between refusals
    assert health.trouble() == trouble
    clock.t += 60  # and none refused for a minute since: writing works again
    recovered = health.trouble()
    assert recovered is not None and recovered.failing == 0
    assert recovered.recovered_at == T0 + 13 and recovered.refused == 3
    health.reported(recovered)
    assert health.trouble() is None


def test_three_writes_stored_without_a_refusal_mean_writing_works_again():
    clock = Clock()
    health = WriteHealth(clock)
    health.failed(full_disk_error())
    for i in range(3):
        trouble = health.trouble()
        assert trouble is not None and trouble.failing == 1, i
        clock.t += 1
        health.stored()
    trouble = health.trouble()
    assert trouble is not None and trouble.failing == 0 and trouble.recovered_at == T0 + 1


def test_refusals_after_the_alert_was_made_are_not_forgotten():
    clock = Clock()
    health = WriteHealth(clock)
    health.failed(full_disk_error())
    health.stored()
    clock.t += 120
    seen = health.trouble()
    assert seen is not None and seen.failing == 0
    health.failed(full_disk_error())  # more after the alert was planned
    health.reported(seen)
    later = health.trouble()
    assert later is not None and later.refused == 2 and later.failing == 1


def test_without_a_stored_write_since_writes_still_fail_however_long_ago():
    clock = Clock()
    health = WriteHealth(clock)
    health.failed(full_disk_error())
    clock.t += 3600
    trouble = health.trouble()
    assert trouble is not None and trouble.failing == 1


def test_only_the_database_refusing_counts_as_a_refused_write():
    from sqlalchemy.exc import IntegrityError

    assert refused_by_database(full_disk_error())
    assert not refused_by_database(IntegrityError("INSERT …", {}, Exception("UNIQUE")))
    assert not refused_by_database(ValueError("a bug"))


def system(writes: WriteFacts | None = None) -> JobFacts:
    return JobFacts("_system", writes=writes)


def test_store_unavailable_fires_from_the_third_refused_write():
    rule = RULES["store_unavailable"].fn
    assert rule(system(), T0) is None
    two = WriteFacts(2, T0, T0 + 1, "database or disk is full", failing=2)
    assert rule(system(two), T0 + 2) is None
    three = WriteFacts(3, T0, T0 + 2, "database or disk is full", failing=3)
    finding = rule(system(three), T0 + 3)
    assert finding is not None and finding.severity == "critical"
    assert "writes fail since" in finding.message and "database or disk is full" in finding.message


def test_store_unavailable_still_reports_writes_refused_while_nothing_could_be_written():
    """Space is back before the alert could be stored: it is raised then, saying when."""
    past = WriteFacts(40, T0, T0 + 60, "database or disk is full", failing=0, recovered_at=T0 + 90)
    finding = RULES["store_unavailable"].fn(system(past), T0 + 95)
    assert finding is not None and finding.severity == "critical"
    assert "40 writes were refused" in finding.message
    assert "writing works again since" in finding.message


def test_a_disk_below_the_free_space_floor_is_critical_whatever_its_share():
    rule = RULES["disk_space"].fn
    floor = Thresholds(disk_min_free_bytes=64 * MB)
    # 1000 MB with 60 MB free: 94 %, under the critical share (95 %), over the floor
    tight = (DiskFacts("/data", ((T0, float(940 * MB), float(1000 * MB)),)),)
    finding = rule(JobFacts("_system", thresholds=floor, disks=tight), T0)
    assert finding is not None and finding.severity == "critical"
    assert "94.0% full" in finding.message and "less than the 64.0 MB" in finding.message
    roomy = (DiskFacts("/data", ((T0, float(500 * MB), float(1000 * MB)),)),)
    assert rule(JobFacts("_system", thresholds=floor, disks=roomy), T0) is None
    # a backup destination has no floor unless configured: only the shares apply
    job = rule(JobFacts("nightly", disks=tight), T0)
    assert job is not None and job.severity == "warning"
