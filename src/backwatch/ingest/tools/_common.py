"""What the tool parsers share: reading mixed JSON/text output, times, ids and the log."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import MESSAGE_LIMIT, RunReport, tail_text
from backwatch.errors import InvalidInput
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE


@dataclass
class Chunk:
    """One piece of a tool's output: a JSON object, or a line of plain text."""

    line: int  # 1-based line where it starts
    obj: dict[str, Any] | None
    text: str = ""


def scan(text: str, *, what: str) -> list[Chunk]:
    """Split output into JSON objects (one per line, or pretty-printed over several lines)
    and plain text lines (a tool's stderr when the caller captured ``2>&1``).

    A line that starts a JSON object but does not parse is an error naming its line:
    it means the output was cut short or is not ``what``.
    """
    decoder = json.JSONDecoder()
    chunks: list[Chunk] = []
    pos, line, size = 0, 1, len(text)
    while pos < size:
        eol = text.find("\n", pos)
        eol = size if eol < 0 else eol
        raw = text[pos:eol]
        body = raw.strip()
        if body.startswith("{"):
            start = pos + len(raw) - len(raw.lstrip())
            try:
                obj, end = decoder.raw_decode(text, start)
            except json.JSONDecodeError as exc:
                # an unterminated string runs to the end: JSON strings hold no raw newline
                if not text[exc.pos :].strip() or exc.msg.startswith("Unterminated string"):
                    problem = f"line {line}: JSON object cut short (the output ends inside it)"
                else:
                    problem = (
                        f"line {text.count(chr(10), 0, exc.pos) + 1}: malformed JSON ({exc.msg})"
                    )
                raise InvalidInput(f"{problem}; expected {what}") from None
            chunks.append(Chunk(line, obj))
            line += text.count("\n", start, end)
            rest_end = text.find("\n", end)
            rest_end = size if rest_end < 0 else rest_end
            if text[end:rest_end].strip():
                raise InvalidInput(f"line {line}: text after a JSON object; expected {what}")
            eol = rest_end
        elif body:
            chunks.append(Chunk(line, None, body))
        pos = eol + 1
        line += 1
    return chunks


def check_job(job: str) -> str:
    if not isinstance(job, str) or not JOB_ID_RE.match(job):
        raise InvalidInput.field("job", JOB_ID_PROBLEM)
    return job


@dataclass(frozen=True)
class Place:
    """Where a value sits: the line its JSON object starts on and the path inside it."""

    line: int
    path: str = ""

    def at(self, key: str) -> Place:
        return Place(self.line, f"{self.path}.{key}" if self.path else key)

    def invalid(self, key: str, problem: str) -> InvalidInput:
        field = self.at(key).path
        return InvalidInput(
            f"line {self.line}: {field} {problem}",
            details=[{"field": field, "problem": problem, "line": self.line}],
        )


def number(obj: dict[str, Any], key: str, place: Place) -> int | None:
    """A non-negative whole number from ``obj``, None when missing or null."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise place.invalid(key, "must be a non-negative number")
    return int(value)


def seconds(obj: dict[str, Any], key: str, place: Place) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise place.invalid(key, "must be a non-negative number of seconds")
    return float(value)


def resolve_times(
    *,
    started_at: float | None,
    finished_at: float | None,
    duration: float | None,
    tool_start: float | None,
    tool_end: float | None,
    now: float | None,
) -> tuple[float, float, float | None]:
    """(start, finish, duration): the caller's times win over the tool's own; the tool's
    duration wins over the difference; an unknown finish is ``now``."""
    start = started_at if started_at is not None else tool_start
    finish = finished_at if finished_at is not None else tool_end
    if duration is None and start is not None and finish is not None:
        duration = max(0.0, finish - start)
    if finish is None and start is not None and duration is not None:
        finish = start + duration
    if finish is None:
        finish = now if now is not None else time.time()
    if start is None:
        start = finish - (duration or 0.0)
    return min(start, finish), finish, duration


@dataclass
class Verdict:
    """What a tool's output means: the run's status, why, and (checks) the verification."""

    status: RunStatus
    message: str
    verify: str | None = None  # "ok" | "failed", for a check run


def outcome_run(
    tool: str,
    text: str,
    *,
    job: str,
    exit_code: int | None,
    verdict: Verdict,
    log: str | None,
    started_at: float | None,
    finished_at: float | None,
    now: float | None,
    kind: str = "backup",
    stats: dict[str, Any] | None = None,
) -> RunReport:
    """A run whose output states no figures (a failure, a check, output cut short): its
    status, code and message; every figure and an unmeasured duration stay null."""
    start, finish, duration = resolve_times(
        started_at=started_at, finished_at=finished_at, duration=None,
        tool_start=None, tool_end=None, now=now,
    )  # fmt: skip
    stats = dict(stats or {})
    if verdict.verify is not None:
        stats["verify"] = verdict.verify
    return RunReport(
        job=job,
        status=verdict.status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=exit_code,
        message=verdict.message[:MESSAGE_LIMIT],
        log=log,
        tool=tool,
        stats=stats or None,
        backup_id=content_id(tool, job, text, start, finish),
        kind=kind,
    )


def content_id(tool: str, job: str, text: str, start: float, finish: float) -> str:
    """An idempotency key for output that names no snapshot: the same output of the same
    run (same times) imported twice is one run."""
    digest = hashlib.sha256(f"{tool}\0{job}\0{start:.3f}\0{finish:.3f}\0{text}".encode())
    return f"{tool}-{digest.hexdigest()[:32]}"


def log_text(lines: Iterable[str]) -> str | None:
    text = "\n".join(line for line in lines if line)
    return tail_text(text) if text else None
