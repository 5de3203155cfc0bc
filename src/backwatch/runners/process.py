"""Running one command: its own process group, a timeout that kills the whole group, the
last 100 KB of output kept, progress lines handed to a callback, secrets masked."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from backwatch.domain.report import LOG_LIMIT
from backwatch.masking import Masker  # masking lives in one place; the runner's name for it

KILL_GRACE_S = 10.0
#: how soon a running command notices that its run was cancelled
CANCEL_CHECK_S = 0.1

__all__ = ["Finished", "Masker", "Tail", "group_alive", "kill_group", "run_process"]


class Tail:
    """The last ``limit`` bytes of lines added from several threads."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self._lines: deque[str] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line) + 1
            while self._size > self.limit and len(self._lines) > 1:
                self._size -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        with self._lock:
            text = "\n".join(self._lines)
        raw = text.encode("utf-8", "replace")
        return raw[-self.limit :].decode("utf-8", "ignore") if len(raw) > self.limit else text


@dataclass
class Finished:
    code: int
    output: str  # kept lines (progress lines left out), masked, at most 100 KB
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False


#: (stream name, line) → True when the line was consumed (a progress line, not logged)
LineHandler = Callable[[str, str], bool]


def run_process(
    argv: list[str],
    *,
    env: dict[str, str],
    timeout_s: float | None = None,
    on_line: LineHandler | None = None,
    mask: Masker | None = None,
    stdout_to: IO[bytes] | None = None,
    cancel: threading.Event | None = None,
    cwd: str | Path | None = None,
    while_running: Callable[[], None] | None = None,
) -> Finished:
    """Run ``argv`` in a new session (its own process group) and wait for it.

    With ``timeout_s`` the whole group gets SIGTERM when time is up, and SIGKILL
    ``KILL_GRACE_S`` later: a child that ignores SIGTERM must not outlive the run.
    ``cancel`` (set from another thread) stops it the same way. ``while_running`` is called
    once the command has started: work that should delay neither its start nor its end.
    """
    mask = mask or Masker()
    tail = Tail()
    began = time.monotonic()
    try:
        # stdin closed; a session of its own, out of reach of the terminal's Ctrl-C
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout_to if stdout_to is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return Finished(code, f"cannot run {argv[0]!r}: {exc.strerror or exc}", 0.0)

    def pump(stream: IO[bytes], name: str) -> None:
        pending = b""
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            pending += chunk
            # \r ends rsync's and borg's progress lines as \n ends the others
            parts = re.split(rb"\r\n|\r|\n", pending)
            pending = parts.pop()
            for raw in parts:
                _line(raw, name)
        if pending:
            _line(pending, name)

    def _line(raw: bytes, name: str) -> None:
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            return
        if on_line is not None and on_line(name, line):
            return
        tail.add(mask(line))

    pumps = []
    for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        if stream is not None:
            thread = threading.Thread(target=pump, args=(stream, name), daemon=True)
            thread.start()
            pumps.append(thread)
    if while_running is not None:
        while_running()
    deadline = began + timeout_s if timeout_s else None
    stopped = _wait(proc, deadline, cancel)
    for thread in pumps:
        # a background child that kept the pipe open must not hold the run forever
        thread.join(timeout=5)
    code = proc.returncode
    if code < 0:
        code = 128 - code
    return Finished(
        code,
        tail.text(),
        time.monotonic() - began,
        timed_out=stopped == "timed_out",
        cancelled=stopped == "cancelled",
    )


def _wait(
    proc: subprocess.Popen[bytes], deadline: float | None, cancel: threading.Event | None
) -> str | None:
    """Wait for ``proc``; None when it exited, "timed_out" or "cancelled" when its group
    had to be killed.

    A thread blocks in ``waitpid`` and sets an event, so the run goes on the moment the
    tool exits; ``Popen.wait(timeout)`` would poll, and lose part of a poll interval a step.
    """
    exited = threading.Event()

    def reap() -> None:
        proc.wait()
        exited.set()

    threading.Thread(target=reap, name=f"wait-{proc.pid}", daemon=True).start()
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if cancel is not None:
            left = CANCEL_CHECK_S if left is None else min(left, CANCEL_CHECK_S)
        if exited.wait(left):
            return None
        if deadline is not None and time.monotonic() >= deadline:
            kill_group(proc)
            return "timed_out"
        if cancel is not None and cancel.is_set():
            kill_group(proc)
            return "cancelled"


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(proc.pid):
            break
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
