"""The overview's job cards, each rendered once and reused until what it shows changes.

Only the cards of the jobs a page shows are rendered (a page of them, whatever the fleet's
size). A card shows its job row, its sparkline and three things that move with the clock:
the health, "3 h ago" and "in 2 h"; a card whose inputs are the same as at its last
rendering is reused. Sparklines are read for the jobs shown, in one bounded query.

One ``CardCache`` per app; it is used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy import Connection

from backwatch.services import reads
from backwatch.services.views import job_verdict, last_run_at
from backwatch.web.pages.common import page_job
from backwatch.web.pages.render import environment, relative


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


#: cards kept for reuse; past this, the cache starts again (pages shown recently refill it)
CARDS_KEPT = 2000


@dataclass
class CardCache:
    """The cards last rendered, by job id."""

    cards: dict[str, Card] = field(default_factory=dict)

    def cards_for(
        self, request: Request, conn: Connection, rows: list[dict[str, Any]], now: float
    ) -> list[Card]:
        """The cards of ``rows`` (job rows with their health facts) as of ``now``, in their
        order, rendering only those whose inputs changed."""
        if not rows:
            return []
        sparks = _spark_texts(reads.recent_durations(conn, jobs=[row["id"] for row in rows]))
        stuck_minutes = request.app.state.hub.settings.alerts.stuck_minutes
        if len(self.cards) > CARDS_KEPT:
            self.cards = {}
        cards = []
        for row in rows:
            verdict = job_verdict(row, now, stuck_minutes=stuck_minutes)
            inputs = (
                sparks.get(row["id"], ""),
                verdict.health.value,
                relative(last_run_at(row), now),
                relative(verdict.next_due, now) if verdict.next_due is not None else "",
            )
            card = self.cards.get(row["id"])
            if card is None or card.inputs != inputs or card.row != row:
                card = self.cards[row["id"]] = _render(request, row, inputs, now)
            cards.append(card)
        return cards


def card_cache(request: Request) -> CardCache:
    """This app's cache (made on first use)."""
    state = request.app.state
    cache = getattr(state, "overview_cards", None)
    if cache is None:
        cache = state.overview_cards = CardCache()
    return cache


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
