"""The notifier: sends what the alert evaluator queued in the ``deliveries`` outbox.

A delivery is claimed with a conditional UPDATE that must change exactly one row, so two
``serve`` instances on one PostgreSQL never claim the same message at once. Transient
failures are retried with exponential backoff; a permanent one (an invalid URL) or too many
attempts marks the delivery dead and the channel failing, with the error kept for the user.

Delivery is at least once, not exactly once: no transport (Apprise, SMTP, a webhook) can
take part in our transaction. Each delivery is claimed just before it is sent (one at a
time, never a batch claimed ahead) under an attempt id, and marked sent in its own short
transaction the moment the transport returns. A claim is taken over only once it is older
than ``STALE_CLAIM_S``, far longer than one send takes, so a live worker's claim is never
taken; what remains is a worker that dies between the transport's return and that commit
(milliseconds): its message is sent again once the claim expires.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from backwatch.notify.transport import TransportError, channel, channel_id
from backwatch.notify.transport import send as apprise_send
from backwatch.services.alerts import ensure_channel
from backwatch.services.unit import WriteUnit
from backwatch.settings import Settings
from backwatch.store import tables as t

MAX_ATTEMPTS = 6
BASE_DELAY_S = 30.0
MAX_DELAY_S = 3600.0
#: a claim older than this was left by a worker that died (or hung) while sending
STALE_CLAIM_S = 300.0
#: deliveries sent per round at most (each claimed when its turn comes)
BATCH = 20

log = logging.getLogger("backwatch.notifier")

Sender = Callable[[str, str, str, str], None]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff(attempts: int) -> float:
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempts - 1))


def attempt_id(worker: str) -> str:
    """Who claims, and which attempt: a mark by an attempt whose claim was taken over
    finds the row no longer its own."""
    return f"{worker[:50]}/{secrets.token_hex(6)}"


def claim_one(engine: Engine, now: float, attempt: str) -> dict[str, Any] | None:
    """Claim the next due delivery (also one a dead worker left in 'sending' longer than
    ``STALE_CLAIM_S``); None when nothing is due."""
    d = t.deliveries
    due = ((d.c.status == "pending") & (d.c.next_attempt_at <= now)) | (
        (d.c.status == "sending") & (d.c.claimed_at < now - STALE_CLAIM_S)
    )
    with engine.connect() as conn:
        candidates = conn.execute(
            select(d.c.id, d.c.status, d.c.claimed_by).where(due).order_by(d.c.id).limit(5)
        ).all()
    for delivery_id, status, claimed_by in candidates:
        with engine.begin() as conn:
            changed = conn.execute(
                update(d)  # unchanged since read: status and claim (None → IS NULL)
                .where(d.c.id == delivery_id, d.c.status == status, d.c.claimed_by == claimed_by)
                .values(status="sending", claimed_by=attempt, claimed_at=now)
            ).rowcount
            row = conn.execute(select(d).where(d.c.id == delivery_id)).mappings().one()
        if changed == 1:
            if status == "sending":
                log.warning(
                    "delivery %s was claimed by %s more than %.0f s ago and never marked: "
                    "that worker died or hung while sending; sending it again (it may have "
                    "gone out already)",
                    delivery_id,
                    claimed_by,
                    STALE_CLAIM_S,
                )
            return dict(row)
    return None


def channel_urls(settings: Settings) -> dict[str, str]:
    return {channel_id(url): url for target in settings.notify for url in target.urls}


def deliver(
    engine: Engine, settings: Settings, now: float, *, sender: Sender | None = None
) -> dict[str, int]:
    """Claim and send what is due; returns counts by outcome."""
    send = sender or (
        lambda url, title, body, severity: apprise_send(url, title, body, severity=severity)
    )
    urls = channel_urls(settings)
    outcome = {"sent": 0, "retry": 0, "dead": 0}
    began, worker = time.monotonic(), worker_id()
    for _ in range(BATCH):
        at = now + (time.monotonic() - began)  # each claim stamped when it is taken
        row = claim_one(engine, at, attempt_id(worker))
        if row is None:
            break
        url = urls.get(row["channel"])
        error: TransportError | None = None
        if url is None:
            error = TransportError("this channel is no longer configured", permanent=True)
        else:
            try:
                send(url, row["title"], row["body"], row["severity"])
            except TransportError as exc:
                error = exc
            except Exception as exc:
                error = TransportError(f"{type(exc).__name__}: {exc}")
        outcome[_record(engine, row, now + (time.monotonic() - began), error)] += 1
    return outcome


def _record(engine: Engine, row: dict[str, Any], now: float, error: TransportError | None) -> str:
    d, c = t.deliveries, t.channels
    attempts = row["attempts"] + 1
    ours = (d.c.id == row["id"]) & (d.c.status == "sending") & (d.c.claimed_by == row["claimed_by"])
    with engine.begin() as conn:
        if error is None:
            marked = conn.execute(
                update(d)
                .where(ours)
                .values(status="sent", attempts=attempts, sent_at=now, last_error=None)
            ).rowcount
            if not marked:  # its claim outlived STALE_CLAIM_S: another worker took it over
                log.warning(
                    "delivery %s was sent, but its claim had expired and another worker "
                    "took it over: the message may go out twice",
                    row["id"],
                )
            conn.execute(
                update(c).where(c.c.id == row["channel"]).values(last_success_at=now, failing=False)
            )
            return "sent"
        dead = error.permanent or attempts >= MAX_ATTEMPTS
        conn.execute(
            update(d)
            .where(ours)
            .values(
                status="dead" if dead else "pending",
                attempts=attempts,
                last_error=error.message,
                next_attempt_at=now + backoff(attempts),
            )
        )
        values: dict[str, Any] = {"last_error": error.message, "last_error_at": now}
        if dead:
            values["failing"] = True
        conn.execute(update(c).where(c.c.id == row["channel"]).values(**values))
    return "dead" if dead else "retry"


def queue_test(settings: Settings, urls: list[str], now: float) -> Any:
    """Op: queue a test message to each URL (used by `notify test` against a server)."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        for url in urls:
            ch = channel(url)
            ensure_channel(conn, ch.id, ch.masked)
            conn.execute(
                t.deliveries.insert().values(
                    alert_id=None,
                    channel=ch.id,
                    event="test",
                    title="backwatch test message",
                    body="If you can read this, backwatch can reach this channel.",
                    severity="info",
                    status="pending",
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        return len(urls)

    return op


def channel_status(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.channels)).mappings()]
