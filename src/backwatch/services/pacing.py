"""Pacing for background rounds that compete with ingest for the one core Python has.

Alert evaluation and status-file refreshes run in threads of ``serve``, and every CPU
second they take under the GIL is a second the request path does not get. Each round
measures its own CPU time (``time.thread_time``) and the next round waits long enough for
the work to stay under a share of one core: a round that took 150 ms of CPU is followed by
a pause of about 5 s at the default 3 %, while an idle server keeps its short minimum gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
#: the share of one core that a kind of background round may take, at most
SHARE = 0.03


def gap_after(cpu_s: float, minimum_s: float, share: float = SHARE) -> float:
    """Seconds to wait after a round that took ``cpu_s`` of CPU, so that rounds take at
    most ``share`` of a core, and never less than ``minimum_s``."""
    return max(minimum_s, cpu_s / share - cpu_s)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` in this thread; answer its result and the CPU seconds it took."""
    start = time.thread_time()
    result = fn()
    return result, time.thread_time() - start
