"""restic: ``backup --json`` (JSON lines keyed by ``message_type``, doc/075_scripting), its
plain-text form, and ``check`` → one run. The outcome contract is in docs/tool-output.md.

- ``status`` lines report progress; their ``error_count`` counts files restic could not
  read. ``verbose_status`` lines (``-v``) are skipped.
- ``summary`` is the last line of a backup that made a snapshot. restic 0.14 prints
  ``files_new``, ``files_changed``, ``data_added``, ``total_files_processed``,
  ``total_bytes_processed``, ``total_duration`` and a short ``snapshot_id``; 0.17 adds
  ``backup_start``, ``backup_end``, ``data_added_packed`` and a full ``snapshot_id``.
- ``error`` lines (on stderr) name a file that could not be read: ``error`` is
  ``{"message": …}`` since 0.17 and Go's ``{"Op", "Path", "Err"}`` before.
- ``exit_error`` (0.17+, on stderr) carries the exit code and the fatal message; before
  0.17 the fatal message is a plain ``Fatal: …`` line.
- Plain text restic prints on stderr even with ``--json``: ``PATH does not exist,
  skipping`` (a missing source path: restic 0.14 still exits 0).

Exit codes: 0 success, 3 snapshot made but some files unreadable (warning); 1 fatal (no
snapshot), 10 no repository, 11 lock failed, 12 wrong password, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.errors import InvalidInput
from backwatch.ingest.tools import register_tool
from backwatch.ingest.tools._common import (
    Chunk,
    Place,
    Verdict,
    check_job,
    content_id,
    log_text,
    number,
    outcome_run,
    resolve_times,
    scan,
    seconds,
)
from backwatch.timeutil import human_bytes, parse_time

TOOL = "restic"
WHAT = "`restic backup --json` output"
PARTIAL = 3
INTERRUPTED = 130
#: exit code → what it means
EXIT_MEANINGS = {
    1: "fatal error, no snapshot was made",
    3: "some source files could not be read",
    10: "the repository does not exist",
    11: "the repository could not be locked",
    12: "wrong password",
    130: "interrupted",
}
#: what restic < 0.17 prints (with exit 1) for the failures 0.17 gives codes of their own
_FATAL_TEXT = (
    ("wrong password", 12),
    ("no key found", 12),
    ("unable to open config file", 10),
    ("is there a repository at the following location", 10),
    ("repository does not exist", 10),
    ("unable to create lock", 11),
    ("repository is already locked", 11),
)
#: fatal messages restic 0.14 prints without "Fatal: "
_FATAL_PLAIN = ("unable to create lock in backend", "repository is already locked")
#: plain lines restic prints about a source it could not (fully) read
_PROBLEM_RE = re.compile(
    r"does not exist, skipping|^error[: ]|^can ?not read|input/output error", re.IGNORECASE
)
#: plain lines of restic itself (not a user's other output): ``backup`` without --json and
#: ``check``
_TEXT_RE = re.compile(
    r"^(Fatal: |repository [0-9a-f]+ opened|using parent snapshot|Files:\s|Dirs:\s|"
    r"Added to the repo|processed \d+ files|snapshot [0-9a-f]+ saved|no parent snapshot|"
    r"open repository|lock repository|load index|create exclusive lock|check all packs|"
    r"check snapshots|no errors were found|read all data|Is there a repository|"
    r"unable to create lock in backend|the `unlock` command)"
)
#: ``restic check`` lines that report progress, or what restic itself calls non-critical
_CHECK_NOISE_RE = re.compile(
    r"^(\[|using temporary cache|read (all|\S+ of|group #)|check .* of the data|"
    r".*non-critical|.*not referenced in any index|\d+ additional files were found)"
)
#: words of a ``restic check`` line that reports damage
_DAMAGE_RE = re.compile(
    r"error|does not match|damaged|missing|invalid|not found|corrupt|unexpected|failed", re.I
)
_CHECK_RE = re.compile(r"^(check snapshots, trees and blobs|check all packs|no errors were found)")
_TEXT_FILES_RE = re.compile(r"^Files:\s+(\d+) new,\s+(\d+) changed,\s+(\d+) unmodified")
_TEXT_PROCESSED_RE = re.compile(r"^processed (\d+) files, ([\d.]+) (\w?i?B) in ([\d:]+)")
_TEXT_ADDED_RE = re.compile(r"^Added to the repo(?:sitory)?: ([\d.]+) (\w?i?B)")
_TEXT_SAVED_RE = re.compile(r"^snapshot ([0-9a-f]+) saved")
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def meaning(code: int) -> str:
    """What restic's exit ``code`` means."""
    return EXIT_MEANINGS.get(code, "failed")


def code_from_text(text: str) -> int | None:
    """The exit code restic ≥ 0.17 gives the failure that an older restic names in text."""
    lower = text.lower()
    return next((c for words, c in _FATAL_TEXT if words in lower), None)


@dataclass
class _Output:
    """What restic printed, sorted by what it says."""

    summaries: list[Chunk] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files it could not read
    fatal: list[str] = field(default_factory=list)  # why the run stopped
    exit_codes: list[int] = field(default_factory=list)
    error_count: int = 0  # the largest ``error_count`` of the status lines
    texts: list[str] = field(default_factory=list)
    ours: bool = False  # anything in it is restic's own output

    @property
    def problems(self) -> list[str]:
        """Sources restic could not read: its ``error`` lines, else such plain lines."""
        return self.errors or [t for t in self.texts if _PROBLEM_RE.search(t)]

    @property
    def checking(self) -> bool:
        return any(_CHECK_RE.match(t) for t in self.texts) and not self.summaries


def _read(chunks: list[Chunk]) -> _Output:
    out = _Output()
    for chunk in chunks:
        obj = chunk.obj
        if obj is None:
            text = chunk.text
            out.texts.append(text)
            if text.startswith("Fatal: "):
                out.fatal.append(text[len("Fatal: ") :].strip())
            elif text.startswith(_FATAL_PLAIN):  # restic < 0.17 says some without "Fatal:"
                out.fatal.append(text)
            if _TEXT_RE.match(text) or (_PROBLEM_RE.search(text) and "skipping" in text):
                out.ours = True
            continue
        kind = obj.get("message_type")
        if kind is None:
            continue
        out.ours = True
        if kind == "summary":
            out.summaries.append(chunk)
        elif kind == "error":
            out.errors.append(_error_text(obj))
        elif kind == "exit_error":
            message = str(obj.get("message", "")).strip()
            out.fatal.append(message.removeprefix("Fatal: "))
            if isinstance(obj.get("code"), int) and not isinstance(obj.get("code"), bool):
                out.exit_codes.append(obj["code"])
        elif kind == "status":
            count = obj.get("error_count")
            if isinstance(count, int) and not isinstance(count, bool):
                out.error_count = max(out.error_count, count)
    return out


def parse(
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
    kind: str | None = None,
) -> RunReport:
    """The run that restic's output (and its exit code, if known) describes: a backup
    (``backup``, with or without ``--json``) or a repository check (``check``)."""
    check_job(job)
    chunks = scan(text, what=WHAT)
    out = _read(chunks)
    if len(out.summaries) > 1:
        lines = ", ".join(str(c.line) for c in out.summaries)
        raise InvalidInput(
            f"lines {lines}: more than one summary; import the output of one backup at a time"
        )
    code = exit_code if exit_code is not None else (out.exit_codes or [None])[-1]
    log = log_text([*out.errors, *(f"Fatal: {f}" for f in out.fatal), *out.texts])
    times = {"started_at": started_at, "finished_at": finished_at, "now": now}
    if out.checking or kind == "check":
        return outcome_run(
            TOOL, text, job=job, exit_code=code, log=log, kind="check",
            verdict=_check_verdict(code, out), **times,
        )  # fmt: skip
    if not out.ours and code is None:
        raise InvalidInput(_not_restic_problem(chunks))
    if not out.summaries:
        figures = _text_summary(out.texts)
        if figures is None:
            return outcome_run(
                TOOL, text, job=job, exit_code=code, log=log,
                verdict=_backup_verdict(code, out, saved=None), **times,
            )  # fmt: skip
        summary, where = figures, Place(0)
    else:
        summary, where = out.summaries[0].obj or {}, Place(out.summaries[0].line)

    files = number(summary, "total_files_processed", where)
    files_new = number(summary, "files_new", where)
    files_changed = number(summary, "files_changed", where)
    size = number(summary, "total_bytes_processed", where)
    added = number(summary, "data_added", where)
    packed = number(summary, "data_added_packed", where)
    start, finish, duration = resolve_times(
        started_at=started_at,
        finished_at=finished_at,
        duration=seconds(summary, "total_duration", where),
        tool_start=_time(summary, "backup_start", where),
        tool_end=_time(summary, "backup_end", where),
        now=now,
    )
    stats: dict[str, Any] = {k: v for k, v in summary.items() if k != "message_type"}
    if added and packed:
        stats["compression_ratio"] = round(added / packed, 3)
    if out.problems:
        stats["errors"] = len(out.problems)
    snapshot = summary.get("snapshot_id")
    snapshot = str(snapshot) if snapshot else None
    saved = f"snapshot {snapshot[:8]} saved" if snapshot else "snapshot saved"
    verdict = _backup_verdict(code, out, saved=saved)
    if verdict.status is RunStatus.SUCCESS:
        verdict.message = (
            f"{saved}: {files if files is not None else '?'} files "
            f"({files_new if files_new is not None else '?'} new, "
            f"{files_changed if files_changed is not None else '?'} changed), "
            f"{human_bytes(added)} added"
        )
    return RunReport(
        job=job,
        status=verdict.status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=code,
        size_bytes=size,
        files=files,
        files_new=files_new,
        files_changed=files_changed,
        bytes_added=added,
        message=verdict.message,
        log=log,
        tool=TOOL,
        stats=stats,
        backup_id=f"{TOOL}-{snapshot}" if snapshot else content_id(TOOL, job, text, start, finish),
    )


def _backup_verdict(code: int | None, out: _Output, *, saved: str | None) -> Verdict:
    """The exit code's contract first, then restic's own words; no snapshot line and no
    code that promises one is never a success."""
    fatal = next((f for f in out.fatal if f), None)
    problems = out.problems
    unreadable = len(problems) or out.error_count
    interrupted = any(t.endswith("signal interrupt received, cleaning up") for t in out.texts)
    if code == INTERRUPTED or (code is None and interrupted):
        return Verdict(
            RunStatus.CANCELLED, "restic was interrupted: signal interrupt received, no snapshot"
        )
    if code is None and fatal is not None:
        code_meant = code_from_text(fatal)
        what = f" ({meaning(code_meant)})" if code_meant else ""
        return Verdict(RunStatus.FAILED, f"restic: {fatal}{what}")
    if code is not None and code not in (0, PARTIAL):
        reason = fatal or meaning(code)
        return Verdict(RunStatus.FAILED, f"restic exited with code {code}: {reason}")
    if saved is None:
        if code == PARTIAL:
            return Verdict(
                RunStatus.WARNING,
                "restic exited with code 3 (snapshot saved, some files could not be read) "
                "but printed no summary" + (f": {problems[0]}" if problems else ""),
            )
        said = f"restic exited with code {code}" if code is not None else "restic's output"
        return Verdict(
            RunStatus.UNKNOWN,
            f"{said} shows no saved snapshot (no summary line): the backup may have been "
            "interrupted or its output cut short",
        )
    if code == PARTIAL or unreadable:
        count = f"{unreadable} file(s)" if unreadable else "some files"
        first = f": {problems[0]}" if problems else ""
        return Verdict(RunStatus.WARNING, f"{saved}, but {count} could not be read{first}")
    return Verdict(RunStatus.SUCCESS, saved)


def check_verdict(code: int | None, text: str) -> Verdict:
    """What ``restic check`` output (and its exit code) says of the repository."""
    return _check_verdict(code, _read(scan(text, what="`restic check` output")))


def _check_verdict(code: int | None, out: _Output) -> Verdict:
    """``restic check``: exit 0 (or, without a code, "no errors were found") passes; a
    non-zero exit, a ``Fatal:`` line or a line reporting damage fails the verification."""
    clean = any(t.startswith("no errors were found") for t in out.texts)
    found = [
        t
        for t in out.texts
        if _DAMAGE_RE.search(t) and not _CHECK_NOISE_RE.match(t) and not _TEXT_RE.match(t)
    ]
    fatal = next((f for f in out.fatal if f), None)
    if fatal is not None or found or (code is not None and code != 0):
        reason = found[0] if found else fatal or f"restic check exited with code {code}"
        summary = f" ({fatal})" if fatal and found else ""
        return Verdict(RunStatus.FAILED, f"check failed: {reason}{summary}", verify="failed")
    if clean or code == 0:
        return Verdict(RunStatus.SUCCESS, "check passed: no errors were found", verify="ok")
    return Verdict(RunStatus.UNKNOWN, 'restic check printed no result (no "no errors were found")')


def _text_summary(texts: list[str]) -> dict[str, Any] | None:
    """The figures of ``restic backup`` without ``--json`` (sizes rounded by restic)."""
    found: dict[str, Any] = {}
    for line in texts:
        if m := _TEXT_FILES_RE.match(line):
            found["files_new"], found["files_changed"] = int(m[1]), int(m[2])
            found["files_unmodified"] = int(m[3])
        elif m := _TEXT_PROCESSED_RE.match(line):
            found["total_files_processed"] = int(m[1])
            found["total_bytes_processed"] = _bytes(m[2], m[3])
            found["total_duration"] = _clock(m[4])
        elif m := _TEXT_ADDED_RE.match(line):
            found["data_added"] = _bytes(m[1], m[2])
        elif m := _TEXT_SAVED_RE.match(line):
            found["snapshot_id"] = m[1]
    if "snapshot_id" not in found:
        return None
    found["rounded"] = True
    return found


def _bytes(value: str, unit: str) -> int | None:
    scale = _UNITS.get(unit)
    return round(float(value) * scale) if scale else None


def _clock(text: str) -> float:
    seconds_ = 0.0
    for part in text.split(":"):
        seconds_ = seconds_ * 60 + float(part)
    return seconds_


def _time(obj: dict[str, Any], key: str, where: Place) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_time(value, field=key)
    except ValueError:
        raise where.invalid(key, f"is not an RFC 3339 time: {value!r}") from None


def _error_text(obj: dict[str, Any]) -> str:
    """One ``error`` line as text: ``ITEM: MESSAGE (during …)``, either shape."""
    err = obj.get("error")
    if isinstance(err, dict) and "message" in err:
        problem = str(err["message"])
    elif isinstance(err, dict) and "Op" in err:
        errno = err.get("Err")
        reason = os.strerror(errno).lower() if isinstance(errno, int) else str(errno)
        problem = f"{err.get('Op')} {err.get('Path')}: {reason}"
    elif err is None:
        problem = "error"
    else:
        problem = err if isinstance(err, str) else json.dumps(err)
    item = obj.get("item")
    during = obj.get("during")
    text = f"{item}: {problem}" if item else problem
    return f"{text} (during {during})" if during else text


def _not_restic_problem(chunks: list[Chunk]) -> str:
    if not chunks:
        return f"empty input; expected {WHAT} (or give restic's exit code with --exit-code)"
    first = next((c for c in chunks if c.obj is not None), None)
    if first is not None:
        return (
            f"line {first.line}: a JSON object without message_type; this is not restic's "
            f"output (expected {WHAT})"
        )
    line = chunks[0]
    return (
        f"line {line.line}: {line.text[:60]!r} is not restic's output (expected {WHAT}, "
        "its plain summary, or `restic check` output)"
    )


register_tool(TOOL, parse)
