"""Run ids: 22 hex characters, time-ordered, and in making order within a millisecond."""

from __future__ import annotations

import re

from backwatch.ids import new_run_id


def test_ids_are_22_hex_characters_led_by_the_milliseconds():
    run_id = new_run_id(1_780_000_000.123)
    assert re.fullmatch(r"[0-9a-f]{22}", run_id)
    assert int(run_id[:11], 16) == 1_780_000_000_123


def test_ids_of_one_millisecond_sort_in_the_order_they_were_made():
    ids = [new_run_id(1_780_000_000.5) for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000


def test_a_later_millisecond_sorts_later_and_starts_from_a_new_random_part():
    first, second = new_run_id(1_780_000_000.001), new_run_id(1_780_000_000.002)
    assert first < second
    assert len({new_run_id(1_780_000_001.0 + i / 1000)[11:] for i in range(50)}) > 40
