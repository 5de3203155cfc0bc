"""Status badges (docs/badges.md): per job and per tag, as SVG, shields.io endpoint JSON or
plain JSON, two-state (up/down) or three-state (up/late/down).

A badge URL holds the project's badge key and a signature of what it shows, so it cannot be
guessed from another badge URL (knowing the photos badge does not reveal the db badge) and
all of them stop working (404) when the key is reset, as with Healthchecks' badge keys:

    /badge/<key>/<sig>/<tag>.<svg|json|shields>        a tag ('*': every job)
    /badge/<key>/<sig>/job/<job>.<svg|json|shields>    one job

``<sig>`` is 8 characters for three states and ends in ``-2`` for two states.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from sqlalchemy import Connection, select, update

from backwatch.domain.health import Health
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for
from backwatch.store.writer import Op

#: ``meta_kv`` key of the project's badge key
BADGE_KEY = "badge_key"
FORMATS = ("svg", "json", "shields")
ALL = "*"
#: the label of the badge of every job
ALL_LABEL = "backups"
#: backwatch health → Healthchecks' check status (services/hc_api.py shows these too).
#: ``unknown`` (the evidence does not show success) is never up.
HC_STATUS = {
    Health.NEW: "new",
    Health.OK: "up",
    Health.RUNNING: "up",
    Health.LATE: "grace",
    Health.MISSED: "down",
    Health.FAILING: "down",
    Health.STUCK: "down",
    Health.UNKNOWN: "down",
    Health.PAUSED: "paused",
}
COLORS = {"up": "#4c1", "late": "#fe7d37", "down": "#e05d44"}
SHIELDS_COLORS = {"up": "success", "late": "important", "down": "critical"}


def badge_key(conn: Connection) -> str | None:
    """The current badge key, or None before the first badge was asked for."""
    value: str | None = conn.execute(
        select(t.meta_kv.c.value).where(t.meta_kv.c.key == BADGE_KEY)
    ).scalar_one_or_none()
    return value


def ensure_badge_key() -> Op[str]:
    """The badge key, created on first use."""

    def op(conn: Connection, unit: WriteUnit) -> str:
        stmt = insert_for(conn, t.meta_kv).values(key=BADGE_KEY, value=_new_key())
        conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.meta_kv.c.key]))
        value: str = conn.execute(
            select(t.meta_kv.c.value).where(t.meta_kv.c.key == BADGE_KEY)
        ).scalar_one()
        return value

    return op


def reset_badge_key(now: float, *, actor: str) -> Op[str]:
    """A new badge key: every badge URL handed out so far answers 404 from now on."""

    def op(conn: Connection, unit: WriteUnit) -> str:
        ensure_badge_key()(conn, unit)
        key = _new_key()
        conn.execute(update(t.meta_kv).where(t.meta_kv.c.key == BADGE_KEY).values(value=key))
        unit.event(
            at=now, kind="auth", entity="system", entity_id="badge_key", to_state="reset",
            actor=actor,
        )  # fmt: skip
        return key

    return op


def _new_key() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, no '.' or '/'


def signature(key: str, kind: str, name: str, states: int) -> str:
    """What a badge URL signs: ``kind`` ('tag' or 'job') and its name, with ``key``."""
    mac = hmac.new(key.encode(), f"{kind}:{name}".encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).decode()[:8]
    return sig + "-2" if states == 2 else sig


def states_for(key: str, kind: str, name: str, sig: str) -> int | None:
    """2 or 3 when ``sig`` signs this badge with ``key``, else None."""
    for states in (3, 2):
        if hmac.compare_digest(signature(key, kind, name, states), sig):
            return states
    return None


def tag_urls(base: str, key: str, tag: str) -> dict[str, str]:
    """Healthchecks' six badge URLs of a tag (``badges/`` in the API)."""
    return _urls(base, key, "tag", tag, f"{tag}")


def job_urls(base: str, key: str, job: str) -> dict[str, str]:
    """The six badge URLs of one job."""
    return _urls(base, key, "job", job, f"job/{job}")


def _urls(base: str, key: str, kind: str, name: str, tail: str) -> dict[str, str]:
    root = base.rstrip("/")
    out = {}
    for fmt in FORMATS:
        for states, suffix in ((2, ""), (3, "3")):
            sig = signature(key, kind, name, states)
            out[f"{fmt}{suffix}"] = f"{root}/badge/{key}/{sig}/{tail}.{fmt}"
    return out


@dataclass(frozen=True)
class BadgeState:
    """What a badge shows: ``status`` (up, late, down) and the counts behind it."""

    status: str
    total: int
    grace: int
    down: int


def badge_state(check_statuses: Iterable[str], states: int) -> BadgeState:
    """The badge of checks in Healthchecks' statuses: down if any is down; late (three
    states only) if any is in its grace time; up otherwise (new and paused count as up)."""
    total = grace = down = 0
    for status in check_statuses:
        total += 1
        if status == "down":
            down += 1
        elif status == "grace":
            grace += 1
    if down:
        return BadgeState("down", total, grace, down)
    if grace and states == 3:
        return BadgeState("late", total, grace, down)
    return BadgeState("up", total, grace, down)


def shields(label: str, state: BadgeState) -> dict[str, object]:
    """shields.io's endpoint JSON (https://shields.io/badges/endpoint-badge)."""
    return {
        "schemaVersion": 1,
        "label": label,
        "message": state.status,
        "color": SHIELDS_COLORS[state.status],
    }


def plain(state: BadgeState) -> dict[str, object]:
    return {"status": state.status, "total": state.total, "grace": state.grace, "down": state.down}


def _text_width(text: str) -> int:
    # Verdana 11px averages about 7 px a character; wide letters a little more
    return sum(9 if c in "mwMW@%" else 5 if c in "ilj.,:;|!' " else 7 for c in text) + 10


def svg(label: str, status: str) -> str:
    """A flat badge, ``label`` on grey and ``status`` on its color, drawn here (no
    external service)."""
    lw, sw = _text_width(label), _text_width(status)
    width = lw + sw
    lab, st = escape(label), escape(status)
    color = COLORS[status]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label, {chr(34): "&quot;"})}: {st}">'
        f"<title>{lab}: {st}</title>"
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{sw}" height="20" fill="{color}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,'
        f'sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{lab}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{lab}</text>'
        f'<text x="{lw + sw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{st}</text>'
        f'<text x="{lw + sw / 2:.1f}" y="14">{st}</text></g></svg>'
    )
