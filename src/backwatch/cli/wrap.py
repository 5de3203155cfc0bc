"""``backwatch wrap JOB -- CMD…``: run a command as a tracked run.

The command's output still reaches the terminal (stdout to stdout, stderr to stderr); the
last 100 KB are kept as the run's log. The exit status is the command's own, whatever
happens to reporting: a backup never fails because backwatch is down.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from backwatch.errors import BackwatchError
from backwatch.ingest.native import check_job_id
from backwatch.ingest.tools import parse_tool_output, tool_names
from backwatch.masking import Masker
from backwatch.runners.process import kill_group
from backwatch.timeutil import parse_duration

LOG_TAIL_BYTES = 100 * 1024
KILL_GRACE_S = 10.0


class _Tail:
    """The last ``limit`` bytes written by several threads."""

    def __init__(self, limit: int = LOG_TAIL_BYTES) -> None:
        self.limit = limit
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.chunks.append(chunk)
            self.size += len(chunk)
            while self.size - len(self.chunks[0]) >= self.limit:
                self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        with self.lock:
            data = b"".join(self.chunks)
        return data[-self.limit :].decode("utf-8", "replace")


def _pump(src: BinaryIO, dst: Any, tail: _Tail) -> None:
    out = getattr(dst, "buffer", dst)
    for chunk in iter(lambda: src.read1(65536), b""):  # type: ignore[attr-defined]
        tail.add(chunk)
        try:
            out.write(chunk)
            out.flush()
        except (OSError, ValueError):
            pass


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _say(message: str) -> None:
    sys.stderr.write(f"backwatch: {message}\n")


def _usage(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


def run_wrapped(
    job: str,
    command: list[str],
    *,
    timeout: str | None,
    target_factory: Callable[[], Any],
) -> int:

    try:
        check_job_id(job)
    except ValueError as exc:
        return _usage(f"job {job!r} {exc}")
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _usage(
            "give the command after --, e.g. backwatch wrap nightly -- restic backup /srv"
        )
    limit_s = None
    if timeout:
        try:
            limit_s = parse_duration(timeout, field="--timeout")
        except ValueError as exc:
            return _usage(str(exc))

    host = socket.gethostname()
    started = time.time()
    tgt = None
    run_id = None
    try:
        tgt = target_factory()
        run_id = tgt.start({"job": job, "host": host, "started_at": _iso(started)})["id"]
    except BackwatchError as exc:
        _say(f"could not report the start ({exc.message}); the command runs anyway")

    tail = _Tail()
    outcome = "failed"
    message = ""
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        message = f"cannot run {command[0]!r}: {exc.strerror or exc}"
        _say(message)
        _report_end(tgt, target_factory, run_id, job, host, started, "failed", code, message, "")
        return code

    interrupted: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        interrupted.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, tail), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, tail), daemon=True),
    ]
    for p in pumps:
        p.start()
    timed_out = False
    try:
        proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _say(f"timeout after {timeout}; stopping the command")
        kill_group(proc, KILL_GRACE_S)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for p in pumps:
        p.join(timeout=5)
    code = proc.returncode
    if code < 0:
        code = 128 - code
    if timed_out:
        outcome, code = "timed_out", 124
        message = f"killed after the {timeout} timeout"
    elif interrupted:
        outcome = "cancelled"
        message = f"interrupted by signal {interrupted[0]}"
    elif code == 0:
        outcome, message = "success", "exit code 0"
    else:
        outcome, message = "failed", f"exit code {code}"
    figures: dict[str, Any] = {}
    if not (timed_out or interrupted):
        outcome, message, figures = _tool_outcome(job, command, code, tail.text(), outcome, message)
    _report_end(
        tgt, target_factory, run_id, job, host, started, outcome, code, message, tail.text(),
        figures,
    )  # fmt: skip
    return code


def _tool_outcome(
    job: str, command: list[str], code: int, output: str, status: str, message: str
) -> tuple[str, str, dict[str, Any]]:
    """A wrapped restic, borg or rsync is judged by its tool's outcome contract (the one
    ``import`` and the runner use: docs/tool-output.md), with its figures; any other
    command, or output the tool's parser cannot read, by its exit code."""

    tool = os.path.basename(command[0])
    if tool not in tool_names() or tool == "builtin":
        return status, message, {}
    try:
        report = parse_tool_output(tool, output, job=job, exit_code=code)
    except BackwatchError:
        return status, message, {}
    figures = {
        name: getattr(report, name)
        for name in (
            "size_bytes", "files", "files_new", "files_changed", "bytes_added", "stats",
        )
        if getattr(report, name) is not None
    }  # fmt: skip
    return report.status.value, report.message or message, figures


def _report_end(
    tgt: Any,
    target_factory: Callable[[], Any],
    run_id: str | None,
    job: str,
    host: str,
    started: float,
    status: str,
    code: int,
    message: str,
    log: str,
    figures: dict[str, Any] | None = None,
) -> None:
    finished = time.time()
    # the command's output may echo a secret of its environment, or a URL's password

    mask = Masker.for_env(dict(os.environ))
    fields = {
        "status": status,
        "exit_code": max(-255, min(255, code)),
        "message": mask(message),
        "log": mask(log) if log else None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.update(figures or {})
    try:
        if tgt is None:  # the start could not be reported: try once more, as one report
            tgt = target_factory()
        if run_id is not None:
            tgt.run_call(run_id, "finish", {**fields, "finished_at": _iso(finished)})
        else:
            tgt.report(
                {
                    "job": job,
                    "host": host,
                    "started_at": _iso(started),
                    "finished_at": _iso(finished),
                    **fields,
                }
            )
    except BackwatchError as exc:
        _say(f"could not report the result ({exc.message})")
    finally:
        if tgt is not None:
            tgt.close()
