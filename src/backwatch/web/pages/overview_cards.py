"""The overview's job cards, each rendered once and reused until what it shows changes.

With 500 jobs, rendering every card on every request was most of the overview's time
(issue 5). A card shows its job row, its sparkline and three things that move with the
clock: the health, "3 h ago" and "in 2 h". A refresh reads the rows, works those three out
for every job (cheap) and renders again only the cards whose inputs differ from the last
rendering. Sparklines are read again only for jobs whose row changed (a new or finished
run changes it), and for all jobs every ``SPARKS_MAX_AGE_S`` (an older run finishing late,
or a run deleted, leaves the row as it was).

One ``CardCache`` per app; it is used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy import Connection

from backwatch.services import reads
from backwatch.services.views import job_verdict, last_run_at, read_jobs
from backwatch.web.pages.common import HEALTH_ORDER, health_rank, page_job
from backwatch.web.pages.render import environment, relative

SPARKS_MAX_AGE_S = 60.0
#: more changed jobs than this: read every sparkline (one query, no huge IN list)
SPARKS_SUBSET_MAX = 500


@dataclass(frozen=True)
class Card:
    """One job's rendered card, with what the grid filters on and what it was made from."""

    id: str
    health: str
    host: str | None
    tags: tuple[str, ...]
    html: Markup
    row: dict[str, Any]
    inputs: tuple[Any, ...]


@dataclass(frozen=True)
class Deck:
    """Every card, most urgent first, with the figures of the filter bar."""

    cards: list[Card]
    counts: dict[str, int]
    tags: list[str]
    hosts: list[str]

    def matching(self, tag: str | None, host: str | None, health: str | None) -> list[Card]:
        return [
            card
            for card in self.cards
            if (not tag or tag in card.tags)
            and (not host or card.host == host)
            and (not health or card.health == health)
        ]


@dataclass
class CardCache:
    """The cards last rendered and the sparklines last read, by job id."""

    cards: dict[str, Card] = field(default_factory=dict)
    sparks: dict[str, str] = field(default_factory=dict)
    sparks_read_at: float = float("-inf")

    def deck(self, request: Request, conn: Connection, now: float) -> Deck:
        """Every job's card as of ``now``, rendering only those whose inputs changed."""
        rows = read_jobs(conn)
        self._refresh_sparks(conn, rows)
        stuck_minutes = request.app.state.hub.settings.alerts.stuck_minutes
        cards = []
        for row in rows:
            verdict = job_verdict(row, now, stuck_minutes=stuck_minutes)
            inputs = (
                self.sparks.get(row["id"], ""),
                verdict.health.value,
                relative(last_run_at(row), now),
                relative(verdict.next_due, now) if verdict.next_due is not None else "",
            )
            card = self.cards.get(row["id"])
            if card is None or card.inputs != inputs or card.row != row:
                card = _render(request, row, inputs, now)
            cards.append(card)
        self.cards = {card.id: card for card in cards}
        return _deck(cards)

    def _refresh_sparks(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        changed = [row["id"] for row in rows if _row_of(self.cards.get(row["id"])) != row]
        stale = time.monotonic() - self.sparks_read_at >= SPARKS_MAX_AGE_S
        if stale or len(changed) > SPARKS_SUBSET_MAX:
            self.sparks = _spark_texts(reads.recent_durations(conn))
            self.sparks_read_at = time.monotonic()
        elif changed:
            fresh = _spark_texts(reads.recent_durations(conn, jobs=changed))
            for job in changed:
                self.sparks[job] = fresh.get(job, "")


def card_cache(request: Request) -> CardCache:
    """This app's cache (made on first use)."""
    state = request.app.state
    cache = getattr(state, "overview_cards", None)
    if cache is None:
        cache = state.overview_cards = CardCache()
    return cache


def _row_of(card: Card | None) -> dict[str, Any] | None:
    return card.row if card is not None else None


def _spark_texts(durations: dict[str, list[float]]) -> dict[str, str]:
    return {job: " ".join(f"{v:.3g}" for v in values) for job, values in durations.items()}


def _render(request: Request, row: dict[str, Any], inputs: tuple[Any, ...], now: float) -> Card:
    """A card from its inputs (no secrets: the overview never shows ping URLs)."""
    spark, health, last_rel, next_rel = inputs
    job = page_job(request, row, now, secrets=False)
    html = (
        environment()
        .get_template("job_card.html")
        .render(job=job, spark=spark, last_rel=last_rel, next_rel=next_rel)
    )
    return Card(
        id=job["id"],
        health=health,
        host=job["host"],
        tags=tuple(job["tags"]),
        html=Markup(html),
        row=row,
        inputs=inputs,
    )


def _deck(cards: list[Card]) -> Deck:
    counts = dict.fromkeys(HEALTH_ORDER, 0)
    for card in cards:
        counts[card.health] = counts.get(card.health, 0) + 1
    return Deck(
        cards=sorted(cards, key=lambda c: (health_rank(c.health), c.id)),
        counts=counts,
        tags=sorted({tag for card in cards for tag in card.tags}),
        hosts=sorted({card.host for card in cards if card.host}),
    )
