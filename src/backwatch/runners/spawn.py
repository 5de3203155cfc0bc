"""Starting one command of a run: the one way the runner does it, shared with the quick
start (``runners.quickstart``), which must start a command exactly as the runner would.

Kept to the standard library's ``subprocess``: the quick start imports this before the
settings, and every module it loads is time the backup waits for.
"""

from __future__ import annotations

import subprocess
import time

TYPE_CHECKING = False  # not typing's: `backwatch run` starts its tool before typing loads
if TYPE_CHECKING:
    from pathlib import Path
    from typing import IO


class Started:
    """A command that is running: its process, and when it started (both clocks)."""

    __slots__ = ("at", "monotonic", "proc")

    def __init__(self, proc: subprocess.Popen[bytes], monotonic: float, at: float) -> None:
        self.proc = proc
        self.monotonic = monotonic
        self.at = at


def spawn(
    argv: list[str],
    env: dict[str, str],
    *,
    stdout_to: IO[bytes] | None = None,
    cwd: str | Path | None = None,
) -> Started:
    """Start ``argv`` in a new session (its own process group, out of reach of the
    terminal's Ctrl-C), stdin closed, stdout and stderr piped. ``OSError`` when it cannot
    be started."""
    monotonic, at = time.monotonic(), time.time()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout_to if stdout_to is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    return Started(proc, monotonic, at)
