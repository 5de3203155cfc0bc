"""Tailing seed 001 JSONL files (``<data>/metrics.jsonl`` and ``[ingest] jsonl_files``).

* The read position (inode, byte offset, line number and a digest of the bytes just before
  the offset) is stored in ``meta_kv`` *in the same transaction* as the runs read up to it, so a
  restart neither re-imports nor skips a line (re-reading one would be harmless anyway:
  ``backup_id`` makes a seed 001 record idempotent).
* A new inode at the path is a rotation: the rest of the old file is read through the still
  open handle, then the new file from its start. A file shorter than the offset, or whose
  bytes just before the offset changed, was truncated or rewritten: it is read from its
  start.
* A last line without its newline is still being written: it waits.
* A bad line is logged as ``file:line: reason`` and skipped; it never stops the tail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, select

from backwatch.domain.report import RunReport
from backwatch.errors import BackwatchError, StoreUnavailable
from backwatch.ingest import parse_record
from backwatch.services.hub import Hub
from backwatch.services.runs import record_report
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.connect import check_connection
from backwatch.store.dialect import insert_for
from backwatch.store.writer import Op

log = logging.getLogger("backwatch.ingest")

BATCH_LINES = 500  # lines stored per transaction
CHUNK_BYTES = 1 << 20  # bytes read per step
MAX_LINE_BYTES = 1 << 20  # a longer line is reported and skipped
MARK_BYTES = 64  # the bytes before the offset, remembered: a rewritten file no longer has them


def save_offset(conn: Connection, key: str, state: dict[str, Any]) -> None:
    stmt = insert_for(conn, t.meta_kv).values(key=key, value=json.dumps(state))
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.meta_kv.c.key], set_={"value": stmt.excluded.value}
        )
    )


def store_lines(
    reports: list[tuple[int, RunReport]], key: str, state: dict[str, Any], now: float
) -> Op[list[tuple[int, str]]]:
    """Record these reports and move the read offset, in one transaction. A report the
    store refuses (e.g. its id belongs to another job) is returned as (line, reason)."""

    def op(conn: Connection, unit: WriteUnit) -> list[tuple[int, str]]:
        refused = []
        for lineno, report in reports:
            try:
                record_report(report, now, actor="jsonl")(conn, unit)
            except BackwatchError as exc:  # raised before this report wrote anything
                refused.append((lineno, exc.message))
        save_offset(conn, key, state)
        return refused

    return op


class JsonlTail:
    """Follows one JSONL file; ``poll()`` ingests whatever complete lines are new."""

    def __init__(self, hub: Hub, path: Path) -> None:
        self.hub = hub
        self.path = path
        self.key = "jsonl:" + hashlib.sha1(str(path).encode()).hexdigest()[:40]
        self.fh: BinaryIO | None = None
        self.inode: int | None = None
        self.offset = 0
        self.line = 0
        self.mark = ""  # digest of the bytes just before the offset
        self.discarding = False  # inside an over-long line, until its newline
        self._loaded = False
        self._seen_size = -1
        self._last_problem: str | None = None

    # -- state
    def _load(self) -> None:
        with self.hub.read_engine.connect() as conn:
            raw = conn.execute(select(t.meta_kv.c.value).where(t.meta_kv.c.key == self.key))
            value = raw.scalar()
        if value:
            try:
                state = json.loads(value)
                self.inode, self.offset, self.line = state["inode"], state["offset"], state["line"]
                self.mark = state.get("mark", "")
                self.discarding = bool(state.get("discarding"))
            except (ValueError, KeyError, TypeError):
                log.warning("%s: stored read position unreadable; reading from the start", self)
        self._loaded = True

    def _state(self, offset: int, line: int, discarding: bool) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "inode": self.inode,
            "offset": offset,
            "line": line,
            "mark": self._mark_at(offset),
            "discarding": discarding,
        }

    def _mark_at(self, offset: int) -> str:
        """Digest of the (up to MARK_BYTES) bytes that end at ``offset``."""
        if self.fh is None or offset <= 0:
            return ""
        length = min(MARK_BYTES, offset)
        return hashlib.sha1(os.pread(self.fh.fileno(), length, offset - length)).hexdigest()

    def __str__(self) -> str:
        return str(self.path)

    # -- polling
    def poll(self) -> bool:
        """Ingest new complete lines; True when more is waiting (read again at once)."""
        if not self._loaded:
            self._load()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.fh is not None:  # moved away: read what its writer still adds to it
                while self._read():
                    pass
            return False
        except OSError as exc:
            self._problem(f"{self}: cannot read: {exc.strerror or exc}")
            return False
        if self.fh is None or os.fstat(self.fh.fileno()).st_ino != st.st_ino:
            if self.fh is not None:
                self._drain()  # rotated: the rest of the old file first
                self._close()
            if not self._open():
                return False
        assert self.fh is not None
        size = os.fstat(self.fh.fileno()).st_size
        if size != self._seen_size:
            self._seen_size = size
            replaced = self.offset > 0 and self._mark_at(self.offset) != self.mark
            if size < self.offset or replaced:
                log.warning("%s was truncated or replaced; reading it from the start", self)
                self._rewind()
        if size <= self.offset:
            return False
        return self._read()

    def _open(self) -> bool:
        try:
            self.fh = open(self.path, "rb")  # noqa: SIM115 - kept open to follow rotation
        except OSError as exc:
            self._problem(f"{self}: cannot open: {exc.strerror or exc}")
            return False
        self._last_problem = None
        actual = os.fstat(self.fh.fileno()).st_ino
        if self.inode is not None and actual != self.inode:
            log.info("%s is a new file (rotated); reading it from the start", self)
            self._rewind()
        self.inode = actual
        self._seen_size = -1
        return True

    def _close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def close(self) -> None:
        self._close()

    def _rewind(self) -> None:
        self.offset = self.line = 0
        self.mark = ""
        self.discarding = False

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("%s", text)
            self._last_problem = text

    def _drain(self) -> None:
        """The path now names another file (or none): read the old one to its end."""
        while self._read(final=True):
            pass

    def _read(self, *, final: bool = False) -> bool:
        """Ingest complete lines from the offset, at most BATCH_LINES in one transaction.

        On a rotated-away file (``final``) a last line without newline is taken as it is.
        Returns True when more may be waiting (a limit stopped it).
        """
        assert self.fh is not None
        self.fh.seek(self.offset)
        block = self.fh.read(CHUNK_BYTES)
        if not block:
            return False
        lines: list[tuple[int, int, bytes]] = []  # (line number, end offset, bytes)
        pos, line, discarding = 0, self.line, self.discarding
        while len(lines) < BATCH_LINES:
            nl = block.find(b"\n", pos)
            if nl < 0:
                break
            line += 1
            if discarding:
                discarding = False
            else:
                lines.append((line, nl + 1, block[pos:nl]))
            pos = nl + 1
        if pos == 0:
            if final:
                line += 1
                if not discarding:
                    lines.append((line, len(block), block))
                discarding = False
            elif len(block) >= MAX_LINE_BYTES or discarding:
                if not discarding:
                    self._bad(line + 1, f"line longer than {MAX_LINE_BYTES} bytes")
                discarding = True
            else:
                return False  # a partial last line: wait for its newline
            pos = len(block)
        final_state = self._state(self.offset + pos, line, discarding)
        if not self._ingest(lines, final_state):
            return False
        self.offset, self.line, self.discarding = self.offset + pos, line, discarding
        self.mark = final_state["mark"]
        return len(lines) >= BATCH_LINES or len(block) == CHUNK_BYTES

    def _parse(self, lineno: int, raw: bytes) -> RunReport | None:
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text = raw.strip()
        if not text:
            return None
        try:
            obj = json.loads(text.decode("utf-8"))
        except UnicodeDecodeError:
            self._bad(lineno, "not UTF-8 text")
            return None
        except json.JSONDecodeError as exc:
            self._bad(lineno, f"not valid JSON (column {exc.colno}: {exc.msg})")
            return None
        try:
            report = parse_record(obj, default_job=self.hub.settings.ingest.default_job)
        except BackwatchError as exc:
            self._bad(lineno, exc.message)
            return None
        report.source = "jsonl"
        return report

    def _bad(self, lineno: int, reason: str) -> None:
        log.warning("%s:%d: skipped: %s", self.path, lineno, reason)

    def _ingest(self, lines: list[tuple[int, int, bytes]], final_state: dict[str, Any]) -> bool:
        """Store the lines' runs and the new offset in one transaction. If that fails and
        the database is up, line by line (each with its own offset), so one line that the
        store cannot take is skipped alone. False: database unavailable, try later."""
        parsed = [(n, end, r) for n, end, raw in lines if (r := self._parse(n, raw)) is not None]
        now = self.hub.now()
        try:
            refused = self.hub.write(
                store_lines([(n, r) for n, _, r in parsed], self.key, final_state, now)
            )
        except Exception as exc:
            if not self._database_up(exc):
                return False
            refused = []
            for n, end, report in parsed:
                state = self._state(self.offset + end, n, False)
                try:
                    refused += self.hub.write(store_lines([(n, report)], self.key, state, now))
                except Exception as exc_one:
                    if not self._database_up(exc_one):
                        return False
                    refused.append((n, f"could not be stored: {exc_one}"))
            try:
                self.hub.write(store_lines([], self.key, final_state, now))
            except Exception as exc_end:
                if not self._database_up(exc_end):
                    return False
                raise
        for lineno, reason in refused:
            self._bad(lineno, reason)
        self._last_problem = None
        return True

    def _database_up(self, exc: BaseException) -> bool:
        try:
            check_connection(self.hub.read_engine)
            return True
        except StoreUnavailable:
            self._problem(f"{self}: database unavailable ({exc}); will retry")
            return False
