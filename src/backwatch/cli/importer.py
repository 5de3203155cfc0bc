"""``backwatch import``: JSONL files of run records, line by line, bad lines skipped."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from backwatch.cli.common import fail
from backwatch.domain.report import native_body
from backwatch.errors import BackwatchError, InvalidInput
from backwatch.ingest.tools import parse_tool_output, tool_names
from backwatch.masking import Masker

FORMATS = ("auto", "seed001", "native")


def _lines(path: str) -> Iterator[tuple[int, str]]:
    if path == "-":
        yield from enumerate(sys.stdin, 1)
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        yield from enumerate(fh, 1)


def import_jsonl(
    path: str, *, fmt: str, job: str | None, target_factory: Callable[[], Any]
) -> dict[str, Any]:

    if fmt not in FORMATS:
        known = ", ".join([*FORMATS, *tool_names()])
        raise fail(f"--format must be one of: {known} (got {fmt!r})", 2)
    name = "standard input" if path == "-" else path
    outcome: dict[str, Any] = {"imported": 0, "duplicates": 0, "rejected": 0, "errors": []}

    mask = Masker.for_env(dict(os.environ))
    tgt = target_factory()
    try:
        try:
            for number, line in _lines(path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    _reject(outcome, name, number, f"not valid JSON ({exc.msg})")
                    continue
                if isinstance(record, dict):
                    _mask_texts(record, mask)
                if isinstance(record, dict) and job and "job" not in record:
                    record["job"] = job
                if isinstance(record, dict) and fmt == "seed001" and "status" in record:
                    _reject(outcome, name, number, "not a seed 001 record (has 'status')")
                    continue
                try:
                    ack = tgt.report(record)
                except BackwatchError as exc:
                    if _stops_import(exc):
                        raise
                    _reject(outcome, name, number, exc.message)
                    continue
                if ack.get("spooled"):
                    outcome["spooled"] = outcome.get("spooled", 0) + 1
                else:
                    outcome["imported" if ack.get("created") else "duplicates"] += 1
        except OSError as exc:
            raise fail(f"cannot read {name}: {exc.strerror or exc}") from None
        prune = getattr(tgt, "prune", None)
        if prune is not None and outcome["imported"]:
            outcome["pruned"] = prune()
    finally:
        tgt.close()
    return outcome


def _mask_texts(record: dict[str, Any], mask: Callable[[str], str]) -> None:
    """A record's free texts with secrets masked (a URL's password, an echoed secret of
    this environment): what it logged is stored and shown to every reader."""
    for name in ("message", "log"):
        value = record.get(name)
        if isinstance(value, str) and value:
            record[name] = mask(value)


def _stops_import(exc: BackwatchError) -> bool:
    """Errors about the server or the token, not the line: every other line would fail too."""
    server_side = exc.code in ("unreachable", "store_unavailable") or exc.status >= 500
    return server_side or exc.status in (401, 403)


def _reject(outcome: dict[str, Any], name: str, number: int, reason: str) -> None:
    outcome["rejected"] += 1
    outcome["errors"].append({"line": number, "reason": reason})
    sys.stderr.write(f"{name}:{number}: skipped: {reason}\n")


def import_tool_output(
    path: str,
    *,
    tool: str,
    job: str,
    exit_code: int | None,
    started_at: float | None,
    finished_at: float | None,
    host: str | None,
    target_factory: Callable[[], Any],
    kind: str | None = None,
) -> dict[str, Any]:
    """One backup's output of ``tool`` (restic, borg, rsync) from FILE or '-' → one run.

    Nothing is stored when the output cannot be parsed. When neither the caller nor the
    output says when the run finished, a file's modification time (or now, for standard
    input) is taken, so importing the same file twice stores one run.
    """

    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            raw, written = sys.stdin.buffer.read(), time.time()
        else:
            with open(path, "rb") as fh:
                raw, written = fh.read(), os.fstat(fh.fileno()).st_mtime
    except OSError as exc:
        raise fail(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        report = parse_tool_output(
            tool,
            raw.decode("utf-8", "replace"),
            job=job,
            exit_code=exit_code,
            started_at=started_at,
            finished_at=finished_at,
            now=written,
            kind=kind,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc.message}", details=exc.details) from None
    body = native_body(report)
    if report.duration_s is None:
        # nobody measured it: a finish equal to the start would be stored as 0 seconds
        body.pop("finished_at", None)
    body["host"] = host or socket.gethostname()

    _mask_texts(body, Masker.for_env(dict(os.environ)))
    tgt = target_factory()
    try:
        ack = tgt.report(body)
    finally:
        tgt.close()
    return {**ack, "run": body}
