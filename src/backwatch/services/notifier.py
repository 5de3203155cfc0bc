"""The notifier: sends what the alert evaluator queued in the ``deliveries`` outbox.

A delivery is claimed with a conditional UPDATE that must change exactly one row, so two
``serve`` instances on one PostgreSQL never send the same message twice. Transient failures
are retried with exponential backoff; a permanent one (an invalid URL) or too many attempts
marks the delivery dead and the channel failing, with the error kept for the user to see.
"""

from __future__ import annotations

import os
import socket
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
STALE_CLAIM_S = 300.0
BATCH = 20

Sender = Callable[[str, str, str, str], None]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff(attempts: int) -> float:
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempts - 1))


def claim(engine: Engine, now: float, worker: str, limit: int = BATCH) -> list[dict[str, Any]]:
    """Claim due deliveries (also ones a dead worker left in 'sending')."""
    d = t.deliveries
    claimed = []
    with engine.begin() as conn:
        candidates = conn.execute(
            select(d.c.id, d.c.status)
            .where(
                ((d.c.status == "pending") & (d.c.next_attempt_at <= now))
                | ((d.c.status == "sending") & (d.c.claimed_at < now - STALE_CLAIM_S))
            )
            .order_by(d.c.id)
            .limit(limit)
        ).all()
    for delivery_id, status in candidates:
        with engine.begin() as conn:
            changed = conn.execute(
                update(d)
                .where(d.c.id == delivery_id, d.c.status == status)
                .values(status="sending", claimed_by=worker, claimed_at=now)
            ).rowcount
            if changed == 1:
                row = conn.execute(select(d).where(d.c.id == delivery_id)).mappings().one()
                claimed.append(dict(row))
    return claimed


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
    for row in claim(engine, now, worker_id()):
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
        outcome[_record(engine, row, now, error)] += 1
    return outcome


def _record(engine: Engine, row: dict[str, Any], now: float, error: TransportError | None) -> str:
    d, c = t.deliveries, t.channels
    attempts = row["attempts"] + 1
    with engine.begin() as conn:
        if error is None:
            conn.execute(
                update(d)
                .where(d.c.id == row["id"])
                .values(status="sent", attempts=attempts, sent_at=now, last_error=None)
            )
            conn.execute(
                update(c).where(c.c.id == row["channel"]).values(last_success_at=now, failing=False)
            )
            return "sent"
        dead = error.permanent or attempts >= MAX_ATTEMPTS
        conn.execute(
            update(d)
            .where(d.c.id == row["id"])
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
