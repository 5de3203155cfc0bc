"""Ids: what a job id may be (one rule for the settings, every ingest format and the
Python client) and run ids, made by clients and servers alike, so re-sending a report never
stores two runs.

Standard library only (``os``, ``re``, ``threading``, ``time``): ``backwatch.client`` imports
it, and ``backwatch run`` makes its run's id before it starts the tool, when every module
loaded is time the backup waits for.
"""

from __future__ import annotations

import os
import re
import threading
import time

#: a job id (a slug): the config file, every ingest format, ping URLs and the client
JOB_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
JOB_ID_PROBLEM = (
    "must be a slug: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit, at most 64 characters"
)

_RANDOM_MAX = 16**11 - 1
_last_id = (0, 0)
_id_lock = threading.Lock()


def new_run_id(now: float | None = None) -> str:
    """A new run id: 22 characters, time-ordered (11 hex digits of milliseconds + 11
    random). Ids made in one process within one millisecond count up from the first one's
    random part (as monotonic ULIDs do): runs that start in the same millisecond list in
    the order they were made."""
    global _last_id
    ms = int((now if now is not None else time.time()) * 1000)
    with _id_lock:
        last_ms, last_random = _last_id
        if ms == last_ms and last_random < _RANDOM_MAX:
            random = last_random + 1
        else:  # 43 random bits: room to count up
            random = int.from_bytes(os.urandom(6), "big") & (_RANDOM_MAX >> 1)
        _last_id = (ms, random)
    return f"{ms:011x}{random:011x}"
