"""borg: ``create --json`` (one JSON document on stdout, after the backup) and ``check`` →
one run. The outcome contract is in docs/tool-output.md.

``archive.stats`` holds ``original_size``, ``compressed_size``, ``deduplicated_size`` and
``nfiles`` (borg 2.0: ``files_stats`` with the added/modified/unchanged/error counts);
``archive`` has ``name``, ``id``, ``start``, ``end`` (local time, no zone) and
``duration``. borg 1.x names no new or changed files there: they are counted from
``--list`` lines (``A path`` / ``M path``, or ``--log-json`` ``file_status`` objects) when
stderr was captured too (``2>&1``). ``--log-json`` log messages carry a level and, for
errors, a ``msgid`` (``PassphraseWrong``, ``LockTimeout``, ``Repository.DoesNotExist``);
``--show-rc``'s "terminating with … status, rc N" gives the exit code.

Exit codes: 0 success; 1 warning; 2 error; with the modern codes (borg 1.4 with
``BORG_EXIT_CODES=modern``, borg 2.0) 3–99 are specific errors and 100–127 specific
warnings; 128+N killed by signal N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
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
from backwatch.timeutil import human_bytes

TOOL = "borg"
WHAT = "`borg create --json` output"
#: modern exit codes (borg 1.4 ``BORG_EXIT_CODES=modern``, borg 2.0) → what they mean
EXIT_MEANINGS = {
    2: "error",
    13: "the repository does not exist",
    15: "not a valid repository",
    17: "an object is missing from the repository",
    21: "permission denied on the repository path",
    52: "wrong passphrase",
    70: "the repository lock failed",
    71: "the repository lock failed",
    72: "the repository could not be locked",
    73: "the repository is locked by another process (lock timeout)",
    100: "a file changed while it was backed up",
    101: "an include pattern never matched",
    102: "some files could not be backed up",
    103: "a file changed while it was backed up",
    104: "some files could not be read (OS error)",
    105: "some files could not be read (permission denied)",
    106: "some files could not be read (I/O error)",
    107: "a source file or directory does not exist",
}
#: ``msgid`` of ``--log-json`` errors, and words of their text, → what they mean
_FATAL_IDS = {
    "PassphraseWrong": "wrong passphrase",
    "Repository.DoesNotExist": "the repository does not exist",
    "Repository.InvalidRepository": "not a valid repository",
    "LockTimeout": "the repository is locked by another process (lock timeout)",
    "LockFailed": "the repository could not be locked",
}
_FATAL_TEXT = (
    ("passphrase supplied in", "wrong passphrase"),
    ("passphrase is incorrect", "wrong passphrase"),
    ("does not exist.", "the repository does not exist"),
    ("is not a valid repository", "not a valid repository"),
    ("failed to create/acquire the lock", "the repository is locked by another process"),
    ("lock.exclusive", "the repository is locked by another process"),
)
_RC_RE = re.compile(r"terminating with (\w+) status, rc (-?\d+)")
_LIST_RE = re.compile(r"^([AMUEdbchspfi?x-]) (/?[^\s:][^:]*)$")
_CHECK_RE = re.compile(
    r"(repository check|archive consistency check|Starting repository index check|"
    r"data integrity verification|"
    r"Data integrity error|segment .* (is )?corrupt|Index object count mismatch)",
    re.IGNORECASE,
)
_CHECK_ERRORS_RE = re.compile(
    r"errors found|problems found|integrity error|corrupt|mismatch|missing|defect", re.I
)
#: borg check's closing verdict ("…, errors found.", "…, problems found.")
_CHECK_SAID_RE = re.compile(r"(errors|problems) found", re.I)
_WARNING_TEXT_RE = re.compile(
    r"\[Errno \d+\]|file changed while we backed it up|never matched|: could not be read"
)
_ERROR_LEVELS = {"ERROR", "CRITICAL"}
_INTERRUPT_RE = re.compile(r"Ctrl-C|SIGINT|SIGTERM|SIGHUP|KeyboardInterrupt")


def status_for_exit(code: int) -> RunStatus:
    """borg's exit-code contract (legacy and modern codes)."""
    if code == 0:
        return RunStatus.SUCCESS
    if code == 1 or 100 <= code <= 127:
        return RunStatus.WARNING
    return RunStatus.FAILED


def meaning(code: int) -> str:
    if code >= 128:
        return f"killed by signal {code - 128}"
    return EXIT_MEANINGS.get(
        code, "warning" if status_for_exit(code) is RunStatus.WARNING else "error"
    )


@dataclass
class _Output:
    """What borg printed besides its JSON document: --list lines, log messages, rc."""

    listed: bool = False
    new: int = 0
    changed: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: str | None = None  # what a known failure means (msgid or words)
    log: list[str] = field(default_factory=list)
    rc: int | None = None
    ours: bool = False
    checking: bool = False
    check_errors: list[str] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return any(_INTERRUPT_RE.search(line) for line in self.errors)

    def add(self, chunk: Chunk) -> None:
        obj = chunk.obj
        if obj is None:
            self._text(chunk.text)
            return
        kind = obj.get("type")
        if kind == "file_status":
            self.ours = True
            self._file(str(obj.get("status", "")), str(obj.get("path", "")))
        elif kind == "log_message":
            self.ours = True
            message = str(obj.get("message", "")).strip()
            self.log.append(message)
            if self._rc(message):
                return
            self._check(message)
            level = obj.get("levelname")
            msgid = obj.get("msgid")
            if level in _ERROR_LEVELS:
                self.errors.append(message)
                self.fatal = self.fatal or _FATAL_IDS.get(str(msgid)) or _fatal_words(message)
            elif level == "WARNING":
                self.warnings.append(message)
        elif kind in ("archive_progress", "progress_message", "progress_percent"):
            self.ours = True

    def _text(self, line: str) -> None:
        self.log.append(line)
        if self._rc(line):
            return
        listed = _LIST_RE.match(line)
        if listed and not line.rstrip().endswith("."):
            self.ours = True
            self._file(listed.group(1), listed.group(2))
            return
        self._check(line)
        fatal = _fatal_words(line)
        if fatal is not None:
            self.ours = True
            self.fatal = self.fatal or fatal
            self.errors.append(line)
        elif _WARNING_TEXT_RE.search(line):
            self.ours = True
            self.warnings.append(line)
        elif line.startswith(("Error:", "Traceback", "Local Exception", "Remote: ")) or (
            _INTERRUPT_RE.search(line)
        ):
            self.ours = True
            self.errors.append(line)

    def _check(self, message: str) -> None:
        if _CHECK_RE.search(message):
            self.ours = self.checking = True
        if _CHECK_ERRORS_RE.search(message):  # counted only if this is a check's output
            self.check_errors.append(message)

    def _file(self, status: str, path: str) -> None:
        self.listed = True
        if status == "A":
            self.new += 1
        elif status == "M":
            self.changed += 1
        elif status == "E":
            self.warnings.append(f"{path}: could not be read")

    def _rc(self, message: str) -> bool:
        found = _RC_RE.search(message)
        if found:
            self.ours = True
            self.rc = int(found.group(2))
        return found is not None


def _fatal_words(text: str) -> str | None:
    lower = text.lower()
    if "repository" not in lower and "passphrase" not in lower and "lock" not in lower:
        return None
    return next((what for words, what in _FATAL_TEXT if words in lower), None)


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
    """The run that borg's output (and its exit code, if known) describes: a backup
    (``create --json``) or a repository check (``check``)."""
    check_job(job)
    if kind == "check" and not text.strip() and exit_code is not None:
        # a passing `borg check` prints nothing: its exit code is the whole answer
        verdict = check_verdict(exit_code, "")
        return outcome_run(
            TOOL, text, job=job, exit_code=exit_code, verdict=verdict, log=None, kind="check",
            started_at=started_at, finished_at=finished_at, now=now,
        )  # fmt: skip
    chunks = scan(text, what=WHAT)
    documents = [c for c in chunks if c.obj is not None and "archive" in c.obj]
    if len(documents) > 1:
        lines = ", ".join(str(c.line) for c in documents)
        raise InvalidInput(
            f"lines {lines}: more than one archive; import the output of one backup at a time"
        )
    document = documents[0] if documents else None
    out = _Output()
    for chunk in chunks:
        if chunk is not document:
            out.add(chunk)
    code = exit_code if exit_code is not None else out.rc
    log = log_text(out.log)
    times = {"started_at": started_at, "finished_at": finished_at, "now": now}
    if document is None and (out.checking or kind == "check"):
        return outcome_run(
            TOOL, text, job=job, exit_code=code, log=log, kind="check",
            verdict=_check_verdict(code, out), **times,
        )  # fmt: skip
    if document is None:
        if not out.ours and code is None:
            raise InvalidInput(_not_borg_problem(chunks))
        return outcome_run(
            TOOL, text, job=job, exit_code=code, log=log,
            verdict=_verdict(code, out, archive=None), **times,
        )  # fmt: skip

    doc = document.obj
    assert doc is not None
    where = Place(document.line, "archive")
    archive = doc.get("archive")
    if not isinstance(archive, dict):
        raise Place(document.line).invalid("archive", "must be a JSON object")
    figures = archive.get("stats") or {}
    if not isinstance(figures, dict):
        raise where.invalid("stats", "must be a JSON object")
    in_stats = where.at("stats")
    original = number(figures, "original_size", in_stats)
    compressed = number(figures, "compressed_size", in_stats)
    dedup = number(figures, "deduplicated_size", in_stats)
    nfiles = number(figures, "nfiles", in_stats)
    command = archive.get("command_line")
    words = command if isinstance(command, list) else str(command or "").split()
    files_new, files_changed = _file_counts(figures, in_stats, out, listed="--list" in words)
    start, finish, duration = resolve_times(
        started_at=started_at,
        finished_at=finished_at,
        duration=seconds(archive, "duration", where),
        tool_start=_local_time(archive, "start", where),
        tool_end=_local_time(archive, "end", where),
        now=now,
    )
    stats: dict[str, Any] = {**figures}
    if original and compressed:
        stats["compression_ratio"] = round(original / compressed, 3)
    if compressed and dedup:
        stats["dedup_ratio"] = round(compressed / dedup, 3)
    stats["archive"] = {k: v for k, v in archive.items() if k != "stats"}
    stats.update({k: v for k, v in doc.items() if k != "archive"})
    if out.warnings or out.errors:
        stats["problems"] = len(out.warnings) + len(out.errors)
    name = str(archive.get("name") or "?")
    verdict = _verdict(code, out, archive=name, files_stats=figures.get("files_stats"))
    if verdict.status is RunStatus.SUCCESS:
        verdict.message = (
            f"archive {name}: {nfiles if nfiles is not None else '?'} files, "
            f"{human_bytes(original)} original, {human_bytes(dedup)} added"
        )
    archive_id = archive.get("id")
    return RunReport(
        job=job,
        status=verdict.status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=code,
        size_bytes=original,
        files=nfiles,
        files_new=files_new,
        files_changed=files_changed,
        bytes_added=dedup,
        message=verdict.message,
        log=log,
        tool=TOOL,
        stats=stats,
        backup_id=(
            f"{TOOL}-{archive_id}" if archive_id else content_id(TOOL, job, text, start, finish)
        ),
    )


def _file_counts(
    figures: dict[str, Any], where: Place, out: _Output, *, listed: bool
) -> tuple[int | None, int | None]:
    """New and changed files: borg 2.0's ``files_stats``, else the --list lines (none at
    all when ``listed``, borg ran with --list, is a count of 0)."""
    counts = figures.get("files_stats")
    if isinstance(counts, dict):  # a status borg saw no file of is left out
        inside = where.at("files_stats")
        return number(counts, "A", inside) or 0, number(counts, "M", inside) or 0
    if out.listed or listed:
        return out.new, out.changed
    return None, None


def _verdict(
    code: int | None, out: _Output, *, archive: str | None, files_stats: Any = None
) -> Verdict:
    """borg's exit code first, then its own messages; no archive is never a success."""
    errored = files_stats.get("E", 0) if isinstance(files_stats, dict) else 0
    problems = [*out.errors, *out.warnings]
    if errored and not problems:
        problems = [f"{errored} file(s) could not be read"]
    first = problems[0] if problems else None
    named = f"archive {archive}: " if archive else ""
    if (code is not None and code >= 128) or (archive is None and out.interrupted):
        said = next((e for e in out.errors if _INTERRUPT_RE.search(e)), f"rc {code}")
        return Verdict(RunStatus.CANCELLED, f"borg was interrupted ({said}), no archive saved")
    if code is not None and status_for_exit(code) is RunStatus.FAILED:
        said = out.errors[0] if out.errors else next((m for m in reversed(out.log) if m), None)
        reason = out.fatal or said or meaning(code)
        if out.fatal and out.errors:
            reason = f"{out.fatal}: {out.errors[0]}"
        return Verdict(RunStatus.FAILED, f"{named}borg exited with rc {code}: {reason}")
    if code is None and (out.fatal or out.errors):
        reason = out.fatal or out.errors[0]
        detail = f": {out.errors[0]}" if out.fatal and out.errors else ""
        return Verdict(RunStatus.FAILED, f"{named}borg failed: {reason}{detail}")
    if archive is None:
        said = f"borg exited with rc {code}" if code is not None else "borg's output"
        because = f" ({meaning(code)})" if code not in (None, 0) else ""
        also = f": {first}" if first else ""
        return Verdict(
            RunStatus.UNKNOWN,
            f"{said}{because} shows no archive: no backup is known to have been saved{also}",
        )
    if code is not None and status_for_exit(code) is RunStatus.WARNING:
        reason = first or meaning(code)
        return Verdict(
            RunStatus.WARNING, f"{named}borg finished with warnings (rc {code}): {reason}"
        )
    if problems:
        return Verdict(RunStatus.WARNING, f"{named}{first}")
    return Verdict(RunStatus.SUCCESS, f"archive {archive} saved")


def check_verdict(code: int | None, text: str) -> Verdict:
    """What ``borg check`` output (and its exit code) says of the repository."""
    out = _Output()
    for chunk in scan(text, what="`borg check` output"):
        out.add(chunk)
    return _check_verdict(code, out)


def _check_verdict(code: int | None, out: _Output) -> Verdict:
    """``borg check``: exit 0 and no error passes; errors found fail the verification
    whatever the exit code (borg 1.x exits 1, a "warning", when it finds corruption)."""
    found = out.check_errors or out.errors
    if found or (code is not None and code != 0):
        reason = found[0] if found else f"borg check exited with rc {code} ({meaning(code or 2)})"
        verdicts = [m for m in found if _CHECK_SAID_RE.search(m)] or found[-1:]
        if verdicts and verdicts[0] != reason:
            reason = f"{reason} ({verdicts[0]})"
        return Verdict(RunStatus.FAILED, f"check failed: {reason}", verify="failed")
    if code == 0 or any(
        "no problems found" in m.lower() or "complete" in m.lower() for m in out.log
    ):
        return Verdict(RunStatus.SUCCESS, "check passed: no problems found", verify="ok")
    return Verdict(RunStatus.UNKNOWN, "borg check printed no result and no exit code was given")


def _local_time(obj: dict[str, Any], key: str, where: Place) -> float | None:
    """borg prints local time without a zone (1.x); a zone, if present, is honoured."""
    value = obj.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise where.invalid(key, f"is not an ISO 8601 time: {value!r}") from None


def _not_borg_problem(chunks: list[Chunk]) -> str:
    if not chunks:
        return f"empty input; expected {WHAT} (or give borg's exit code with --exit-code)"
    first = next((c for c in chunks if c.obj is not None), None)
    if first is not None:
        return (
            f"line {first.line}: a JSON object that is neither an archive nor a borg log "
            f"message; expected {WHAT}"
        )
    line = chunks[0]
    return (
        f"line {line.line}: {line.text[:60]!r} is not borg's output (expected {WHAT}, "
        "borg's log lines, or `borg check` output)"
    )


register_tool(TOOL, parse)
