"""Healthchecks-compatible pings: start, success, fail, exit-status and log signals → runs.

Pairing (the one place it is decided):

* With ``?rid=<uuid>`` the rid is the run's ``backup_id``: a start opens the run, a finish
  with the same rid closes it. Re-sending either (curl ``--retry``) changes nothing.
* Without a rid (borgmatic, cron one-liners) a finish closes the newest open rid-less ping
  run of the job. A new rid-less start while one is open wins, as in Healthchecks: the older
  run is closed as ``cancelled`` ("superseded by a newer start ping") instead of staying
  ``running`` for ever.
* A finish with nothing to pair with is a complete run (started = finished, duration 0).
* A body is appended to the paired run's log, unless it begins with all of that log (a
  client resending its growing buffer): then it replaces it, so no line is doubled.
* ``/log`` appends its body to the paired run's log (and makes its last line the run's
  message) without changing its state; with no run to pair with it is kept as a ``log``
  event on the job.
"""

from __future__ import annotations

import codecs
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update

from backwatch.domain.lifecycle import ACTIVE, RunStatus
from backwatch.domain.report import LOG_LIMIT, MESSAGE_LIMIT, RunReport, tail_text
from backwatch.errors import InvalidInput, NotFound
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.services import runs as run_service
from backwatch.services.jobs import ensure_job
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for
from backwatch.store.redact import redact_text
from backwatch.store.writer import Op

#: bytes of a ping body kept (the first ones, as Healthchecks does); sent as Ping-Body-Limit
PING_BODY_LIMIT = LOG_LIMIT
#: ``meta_kv`` key of the project-wide ping key used by slug URLs
PROJECT_KEY = "ping_key"
SOURCE = "ping"
ACTOR = "ping"
SUPERSEDED = "superseded by a newer start ping"
MAX_EXIT_STATUS = 255
KEY_MAX = 64  # ping keys and job ids are at most 64 characters
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_REDACTED = "<ping-key>"


class Signal(StrEnum):
    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    LOG = "log"


class BadPingURL(ValueError):
    """A URL Healthchecks answers with 400 (the text is Healthchecks' own)."""


@dataclass(frozen=True)
class Ping:
    signal: Signal
    exit_code: int | None = None
    rid: str | None = None
    body: str = ""

    @property
    def final_status(self) -> RunStatus:
        return RunStatus.SUCCESS if self.signal is Signal.SUCCESS else RunStatus.FAILED


@dataclass
class PingOutcome:
    """What a ping did: the run it touched (if any) and whether it created the job."""

    run_id: str | None
    job_created: bool = False


def parse_action(text: str | None) -> tuple[Signal, int | None] | None:
    """The last URL segment → (signal, exit code); None when it is no action (→ 404).

    Raises BadPingURL for an exit status above 255, as Healthchecks does."""
    if text is None:
        return Signal.SUCCESS, None
    if text in (Signal.START, Signal.FAIL, Signal.LOG):
        return Signal(text), None
    if text.isascii() and text.isdigit():
        code = int(text)
        if code > MAX_EXIT_STATUS:
            raise BadPingURL("invalid url format")
        return (Signal.SUCCESS if code == 0 else Signal.FAIL), code
    return None


def parse_rid(value: str | None) -> str | None:
    """``?rid=`` → the canonical lower-case UUID; BadPingURL if it is not a UUID."""
    if value is None:
        return None
    if not _UUID_RE.match(value):
        raise BadPingURL("invalid uuid format")
    return value.lower()


def body_text(raw: bytes, *, hide: tuple[str, ...] = ()) -> str:
    """The first PING_BODY_LIMIT bytes as text (a cut character dropped, bad bytes replaced),
    with the ping keys in ``hide`` masked: a client's log often quotes its own ping URL."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(raw[:PING_BODY_LIMIT], final=len(raw) <= PING_BODY_LIMIT)
    for key in hide:
        if key:
            text = text.replace(key, _REDACTED)
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL


def redact_body(conn: Connection, body: str) -> str:
    """``body`` with any job's ping key and the project key masked, not just the key of the
    URL it came in on (issue 14.4)."""
    return redact_text(conn, body) or ""


def plausible_key(value: str) -> bool:
    """False for a path segment that cannot be a ping key or job id (saves a lookup and keeps
    NUL bytes, which PostgreSQL refuses, away from the database)."""
    return 0 < len(value) <= KEY_MAX and value.isprintable()


def check_slug(slug: str) -> None:
    """Raise InvalidInput unless ``slug`` is a valid job id (slug URLs name the job)."""
    if not JOB_ID_RE.match(slug):
        raise InvalidInput.field("slug", JOB_ID_PROBLEM)


# --- reads (on the read engine, before anything is written) ----------------------------


# The statements every ping runs are built once, here: building one cost SQLAlchemy as
# much as running it, and a ping runs five or six.
_BY_PING_KEY = select(t.jobs.c.id).where(t.jobs.c.ping_key == bindparam("key"))
_BY_CHECK_UUID = select(t.jobs.c.id).where(t.jobs.c.check_uuid == bindparam("uuid"))
_PROJECT_KEY = select(t.meta_kv.c.value).where(t.meta_kv.c.key == PROJECT_KEY)
_JOB_EXISTS = select(t.jobs.c.id).where(t.jobs.c.id == bindparam("job"))
_BY_RID = select(t.runs).where(
    t.runs.c.job == bindparam("job"), t.runs.c.backup_id == bindparam("rid")
)
#: open rid-less ping runs (see ``_open_without_rid``)
_OPEN = (
    select(t.runs)
    .where(t.runs.c.job == bindparam("job"), t.runs.c.source == SOURCE, text(t.OPEN_RUN))
    .order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc())
)
_STORED_LOG = select(t.run_logs.c.log).where(t.run_logs.c.run_id == bindparam("run_id"))


def job_for_key(conn: Connection, key: str) -> str | None:
    """The job whose own ping key is ``key``, or whose check UUID it is (the ping URL that
    Healthchecks' management API hands out: services/hc_api.py)."""
    found = conn.execute(_BY_PING_KEY, {"key": key}).scalar_one_or_none()
    if found is None and len(key) == 36:
        found = conn.execute(_BY_CHECK_UUID, {"uuid": key.lower()}).scalar_one_or_none()
    return found


def project_key_matches(conn: Connection, key: str) -> bool:
    """True if ``key`` is the project ping key (slug URLs); False while there is none."""
    stored = conn.execute(_PROJECT_KEY).scalar_one_or_none()
    return stored is not None and hmac.compare_digest(stored.encode(), key.encode())


def job_exists(conn: Connection, job: str) -> bool:
    return conn.execute(_JOB_EXISTS, {"job": job}).first() is not None


# --- writes ------------------------------------------------------------------------------


def ensure_project_key() -> Op[str]:
    """The project ping key for slug URLs, created on first use."""

    def op(conn: Connection, unit: WriteUnit) -> str:
        stmt = insert_for(conn, t.meta_kv).values(key=PROJECT_KEY, value=secrets.token_urlsafe(16))
        conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.meta_kv.c.key]))
        value: str = conn.execute(_PROJECT_KEY).scalar_one()
        return value

    return op


def record_ping(job: str, ping: Ping, now: float, *, create: bool = False) -> Op[PingOutcome]:
    """Apply one ping to ``job`` (created first when ``create`` and it does not exist)."""

    def op(conn: Connection, unit: WriteUnit) -> PingOutcome:
        created = False
        if not job_exists(conn, job):
            if not create:
                raise NotFound("not found")
            ensure_job(conn, unit, job, now, actor=ACTOR)
            created = True
        run_id: str | None
        if ping.signal is Signal.START:
            run_id = _start(conn, unit, job, ping, now)
        elif ping.signal is Signal.LOG:
            run_id = _log(conn, unit, job, ping, now)
        else:
            run_id = _finish(conn, unit, job, ping, now)
        return PingOutcome(run_id, created)

    return op


def _by_rid(conn: Connection, job: str, rid: str) -> dict[str, Any] | None:
    row = conn.execute(_BY_RID, {"job": job, "rid": rid}).mappings().first()
    return dict(row) if row is not None else None


def _open_without_rid(conn: Connection, job: str) -> list[dict[str, Any]]:
    """Open rid-less ping runs of ``job``, newest first. The open runs are found through
    the ``ix_runs_open`` partial index (its predicate written as the index says it); their
    rid is checked here, since SQLite would otherwise pick the (job, backup_id) index and
    read every rid-less run the job ever had."""
    rows = conn.execute(_OPEN, {"job": job}).mappings()
    return [dict(row) for row in rows if row["backup_id"] is None]


def _paired(conn: Connection, job: str, rid: str | None) -> dict[str, Any] | None:
    if rid is not None:
        return _by_rid(conn, job, rid)
    open_runs = _open_without_rid(conn, job)
    return open_runs[0] if open_runs else None


def _stored_log(conn: Connection, run_id: str) -> str:
    log = conn.execute(_STORED_LOG, {"run_id": run_id}).scalar_one_or_none()
    return log or ""


def _joined(before: str, after: str) -> str:
    """``after`` appended to the run's log, unless it already repeats all of it: clients
    resend their growing buffer (borgmatic pings /log, then /fail or success, with the same
    lines), and the run's log should hold those lines once."""
    if not before or after.startswith(before):
        return after
    if not after:
        return before
    return before + ("" if before.endswith("\n") else "\n") + after


def _start(conn: Connection, unit: WriteUnit, job: str, ping: Ping, now: float) -> str:
    if ping.rid is not None:
        existing = _by_rid(conn, job, ping.rid)
        if existing is not None:  # a retried start, or a rid reused: nothing to open
            return str(existing["id"])
    else:
        for older in _open_without_rid(conn, job):
            run_service.finish_run(
                older["id"],
                RunStatus.CANCELLED,
                now,
                fields={"message": SUPERSEDED},
                actor=ACTOR,
            )(conn, unit)
    report = RunReport(
        job=job,
        status=RunStatus.RUNNING,
        started_at=now,
        backup_id=ping.rid,
        log=ping.body or None,
        source=SOURCE,
    )
    return str(run_service.start_run(report, now, actor=ACTOR)(conn, unit).run["id"])


def _finish_message(ping: Ping) -> str | None:
    if ping.exit_code:
        return f"exit status {ping.exit_code}"
    return None


def _finish(conn: Connection, unit: WriteUnit, job: str, ping: Ping, now: float) -> str:
    status = ping.final_status
    run = _paired(conn, job, ping.rid)
    if run is not None and RunStatus(run["status"]) not in ACTIVE:
        return str(run["id"])  # this rid's run is already finished: a retried finish
    message = _finish_message(ping)
    if run is not None:
        log = _joined(_stored_log(conn, run["id"]), ping.body)
        run_service.finish_run(
            run["id"],
            status,
            now,
            fields={"exit_code": ping.exit_code, "message": message},
            log=log or None,
            actor=ACTOR,
        )(conn, unit)
        return str(run["id"])
    report = RunReport(
        job=job,
        status=status,
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        exit_code=ping.exit_code,
        message=message,
        log=ping.body or None,
        backup_id=ping.rid,
        source=SOURCE,
    )
    return str(run_service.record_report(report, now, actor=ACTOR)(conn, unit).run["id"])


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            return tail_text(line.strip(), MESSAGE_LIMIT)
    return None


def _log(conn: Connection, unit: WriteUnit, job: str, ping: Ping, now: float) -> str | None:
    run = _paired(conn, job, ping.rid)
    if run is None:
        unit.event(
            at=now,
            kind="log",
            entity="job",
            entity_id=job,
            job=job,
            actor=ACTOR,
            detail={"log": ping.body[:MESSAGE_LIMIT], "rid": ping.rid},
        )
        unit.changes.append({"type": "job", "id": job})
        return None
    if not ping.body:
        return str(run["id"])
    log = tail_text(_joined(_stored_log(conn, run["id"]), ping.body)) or ""
    stmt = insert_for(conn, t.run_logs).values(run_id=run["id"], log=log)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.run_logs.c.run_id], set_={"log": stmt.excluded.log}
        )
    )
    changes: dict[str, Any] = {"updated_at": now}
    message = _last_line(ping.body)
    if message is not None:
        changes["message"] = message
    conn.execute(update(t.runs).where(t.runs.c.id == run["id"]).values(**changes))
    unit.changes.append({"type": "run", "id": run["id"], "job": job})
    return str(run["id"])
