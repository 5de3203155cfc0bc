"""Retention of the built-in engine: what a policy keeps, and that kept chains stay whole."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backwatch.engine.forget import Policy, decide, within_seconds
from backwatch.engine.manifest import FILE, Entry, Manifest
from backwatch.errors import InvalidInput

HOUR = 3600.0
DAY = 86400.0
T0 = 1_699_920_000.0  # midnight UTC


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Buckets are local days and hours: make local time UTC for these tests."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _snapshot(i: int, at: float, holders: list[int]) -> Manifest:
    """Snapshot ``s{i}`` whose files are held by the snapshots ``holders``."""
    entries = [
        Entry(f"src/f{n}", FILE, 0o644, 0.0, 1, 1, "h", f"s{h:03}") for n, h in enumerate(holders)
    ]
    kind = "full" if holders == [i] * len(holders) else "incremental"
    return Manifest(f"s{i:03}", at, kind, None, [], entries)


def _daily(count: int) -> list[Manifest]:
    return [_snapshot(i, T0 + i * DAY, [i]) for i in range(count)]


def test_keep_last_keeps_the_newest() -> None:
    decision = decide(_daily(5), Policy(last=2))
    assert sorted(decision.keep) == ["s003", "s004"]
    assert decision.remove == ["s000", "s001", "s002"]


def test_keep_daily_keeps_one_per_day_the_newest_of_it() -> None:
    snaps = [_snapshot(i, T0 + (i // 3) * DAY + (i % 3) * HOUR, [i]) for i in range(9)]
    decision = decide(snaps, Policy(daily=2))
    assert sorted(decision.keep) == ["s005", "s008"]


def test_keep_within_is_measured_from_the_newest_snapshot() -> None:
    decision = decide(_daily(10), Policy(within="3d"))
    assert sorted(decision.keep) == ["s006", "s007", "s008", "s009"]


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(InvalidInput, match="keep"):
        decide(_daily(3), Policy())


@pytest.mark.parametrize("bad", ["7", "d7", "7days", ""])
def test_keep_within_needs_a_period(bad: str) -> None:
    with pytest.raises(InvalidInput, match="period"):
        within_seconds(bad)


def test_within_reads_restic_periods() -> None:
    assert within_seconds("1y6m") == (365 + 180) * DAY
    assert within_seconds("2w12h") == 14 * DAY + 12 * HOUR


def test_the_bases_of_a_kept_incremental_are_kept() -> None:
    snaps = [
        _snapshot(0, T0, [0, 0]),
        _snapshot(1, T0 + DAY, [0, 1]),
        _snapshot(2, T0 + 2 * DAY, [0, 2]),
    ]
    decision = decide(snaps, Policy(last=1))
    assert "s000" in decision.keep and "base of s002" in decision.keep["s000"]
    assert decision.remove == ["s001"]


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    count=st.integers(1, 25),
    policy=st.builds(
        Policy,
        last=st.none() | st.integers(0, 5),
        hourly=st.none() | st.integers(0, 5),
        daily=st.none() | st.integers(0, 5),
        weekly=st.none() | st.integers(0, 3),
        monthly=st.none() | st.integers(0, 3),
        yearly=st.none() | st.integers(0, 2),
        within=st.none() | st.sampled_from(["1h", "2d", "1w"]),
    ),
)
def test_every_kept_snapshot_keeps_what_it_needs(
    data: st.DataObject, count: int, policy: Policy
) -> None:
    """Whatever the policy, no kept snapshot refers to a removed one, and the newest ones
    the policy names are kept."""
    if policy.empty():
        policy.last = 1
    snaps = []
    for i in range(count):
        gap = data.draw(st.floats(60, 40 * DAY))
        at = (snaps[-1].created_at if snaps else T0) + gap
        holders = [data.draw(st.integers(0, i)) for _ in range(3)]
        snaps.append(_snapshot(i, at, holders))
    decision = decide(snaps, policy)
    by_id = {m.id: m for m in snaps}
    assert set(decision.keep) | set(decision.remove) == set(by_id)
    assert not set(decision.keep) & set(decision.remove)
    for kept in decision.keep:
        assert set(by_id[kept].bases) <= set(decision.keep)
    if policy.last:
        assert snaps[-1].id in decision.keep
