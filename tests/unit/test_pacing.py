"""Background rounds stay a small share of one core (services/pacing.py)."""

from __future__ import annotations

import pytest

from backwatch.services import pacing


def test_a_cheap_round_keeps_the_minimum_gap():
    assert pacing.gap_after(0.01, 2.0) == 2.0


def test_a_costly_round_is_followed_by_a_pause_that_keeps_it_under_its_share():
    gap = pacing.gap_after(0.15, 2.0, share=0.05)
    assert gap == pytest.approx(2.85)
    assert 0.15 / (0.15 + gap) == pytest.approx(0.05)


def test_timed_answers_the_result_and_the_cpu_it_took():
    result, cpu = pacing.timed(lambda: sum(i * i for i in range(200_000)))
    assert result == sum(i * i for i in range(200_000))
    assert cpu > 0
