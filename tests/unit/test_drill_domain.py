"""The pure part of restore drills: the sample, the verdict and the full-restore estimate."""

from __future__ import annotations

from backwatch.domain.drill import CHANGED_SINCE, DIFFERS, OK, Candidate, DrillResult, choose_sample
from backwatch.domain.lifecycle import RunStatus

FILES = [Candidate(f"/d/f{i:03}", size) for i, size in enumerate([1, 10, 100, 1_000, 10_000] * 20)]


def test_the_sample_holds_the_largest_the_smallest_and_the_always_paths() -> None:
    always = [Candidate("/keep/a", 5), Candidate("/keep/b", 7)]
    sample = choose_sample([*FILES, *always], count=8, max_bytes=None, always=["/keep"], seed=1)
    paths = [c.path for c in sample]
    assert paths[:2] == ["/keep/a", "/keep/b"]
    assert len(sample) == 8 and len(set(paths)) == 8
    sizes = [c.size for c in sample]
    assert 10_000 in sizes and 1 in sizes
    assert len({c.size for c in sample}) >= 3  # small and large files both


def test_the_sample_keeps_to_its_byte_budget_and_is_repeatable() -> None:
    sample = choose_sample(FILES, count=50, max_bytes=2_000, seed=3)
    assert sum(c.size for c in sample) <= 2_000
    assert choose_sample(FILES, count=10, max_bytes=None, seed=7) == choose_sample(
        FILES, count=10, max_bytes=None, seed=7
    )
    assert choose_sample([], count=5, max_bytes=None) == []


def test_the_estimate_counts_the_fixed_cost_once() -> None:
    # 1 s to start any restore, then 100 MB/s: a 1 GB snapshot takes about 11 s, where the
    # sample's plain average (2.5 s for 150 MB) would say 16.7 s
    result = DrillResult("restic", snapshot_bytes=10**9, fixed_seconds=1.0,
                         bulk_bytes=150 * 10**6, bulk_seconds=2.5, restore_seconds=3.5,
                         bytes_restored=150 * 10**6)  # fmt: skip
    result.files = {"/a": OK}
    assert result.rate == 100 * 10**6
    assert result.estimate_s is not None and abs(result.estimate_s - 11.0) < 1e-6
    assert result.status is RunStatus.SUCCESS and "about 11 s" in result.message()


def test_a_file_that_differs_fails_and_a_changed_source_does_not() -> None:
    changed = DrillResult("borg", files={"/a": OK, "/b": CHANGED_SINCE})
    assert changed.status is RunStatus.SUCCESS and "1 changed at the source" in changed.message()
    broken = DrillResult("borg", files={"/a": OK, "/b": DIFFERS}, details={"/b": "sha256 x"})
    assert broken.status is RunStatus.FAILED and "/b (sha256 x)" in broken.message()
    assert broken.stats()["verify"] == "failed" and broken.stats()["drill"]["differ"] == ["/b"]
    assert DrillResult("borg").status is RunStatus.UNKNOWN
    assert DrillResult("borg", problem="wrong passphrase").status is RunStatus.FAILED


def test_three_restore_calls_or_more_are_fitted_as_one_line() -> None:
    # 0.5 s to start each restore, 100 MB/s after: the calls lie on seconds = 0.5 + b / 1e8,
    # with noise; a 1 GB snapshot is then about 10.5 s
    calls = [(1_000, 0.52), (20 * 10**6, 0.68), (40 * 10**6, 0.92), (80 * 10**6, 1.29)]
    result = DrillResult("restic", snapshot_bytes=10**9, calls=calls, fixed_seconds=0.52,
                         bulk_bytes=140 * 10**6, bulk_seconds=2.89, bulk_calls=3)  # fmt: skip
    assert result.estimate_s is not None and abs(result.estimate_s - 10.5) < 0.6
    # two calls, or calls that make no line: the fixed-cost probe and the bulk's rate
    two = DrillResult("restic", snapshot_bytes=10**9, calls=calls[:2], fixed_seconds=0.52,
                      bulk_bytes=20 * 10**6, bulk_seconds=0.68, bulk_calls=1)  # fmt: skip
    assert two.estimate_s is not None and two.estimate_s > 0
    upside_down = [(1_000, 2.0), (10**6, 1.0), (10**7, 0.5)]
    assert DrillResult("x", snapshot_bytes=10**9, calls=upside_down).estimate_s is None
