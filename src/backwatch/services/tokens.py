"""API tokens: random secrets shown once, stored as SHA-256 hashes, with a scope.

Scopes: ``ingest`` (report runs), ``read`` (read when reads are protected), ``admin``
(everything: job changes, tokens). ``admin`` includes the others.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from backwatch.errors import Conflict, InvalidInput, NotFound
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t

SCOPES = ("ingest", "read", "admin")
PREFIX = "bw_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allows(scope: str, needed: str) -> bool:
    return scope == "admin" or scope == needed or (needed == "read" and scope == "ingest")


def create_token(name: str, scope: str, now: float, *, actor: str = "cli") -> Any:
    """Op → (token text, row). The text is returned once and never stored."""
    if scope not in SCOPES:
        raise InvalidInput.field("scope", f"must be one of: {', '.join(SCOPES)}")
    if not name or len(name) > 128:
        raise InvalidInput.field("name", "must be 1–128 characters")
    secret = PREFIX + secrets.token_urlsafe(32)

    def op(conn: Connection, unit: WriteUnit) -> tuple[str, dict[str, Any]]:
        taken = conn.execute(
            select(t.tokens.c.id).where(t.tokens.c.name == name, t.tokens.c.revoked_at.is_(None))
        ).first()
        if taken is not None:
            raise Conflict(f"a token named {name!r} already exists; revoke it first")
        conn.execute(
            t.tokens.delete().where(t.tokens.c.name == name, t.tokens.c.revoked_at.isnot(None))
        )
        row = {
            "name": name,
            "hash": hash_token(secret),
            "prefix": secret[:7],
            "scope": scope,
            "created_at": now,
        }
        conn.execute(t.tokens.insert().values(**row))
        unit.event(
            at=now, kind="auth", entity="token", entity_id=name, to_state="created", actor=actor
        )
        return secret, row

    return op


def revoke_token(name: str, now: float, *, actor: str = "cli") -> Any:
    def op(conn: Connection, unit: WriteUnit) -> None:
        result = conn.execute(
            update(t.tokens)
            .where(t.tokens.c.name == name, t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if not result.rowcount:
            raise NotFound(f"no active token named {name!r}")
        unit.event(
            at=now, kind="auth", entity="token", entity_id=name, to_state="revoked", actor=actor
        )

    return op


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.tokens.c.name,
                t.tokens.c.prefix,
                t.tokens.c.scope,
                t.tokens.c.created_at,
                t.tokens.c.last_used_at,
                t.tokens.c.revoked_at,
            ).order_by(t.tokens.c.created_at)
        ).mappings()
        return [dict(r) for r in rows]


def active_token_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(t.tokens.c.id).where(t.tokens.c.revoked_at.is_(None))).all())


def lookup(engine: Engine, token: str) -> tuple[str, str] | None:
    """(name, scope) of an active token, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(t.tokens.c.name, t.tokens.c.scope).where(
                t.tokens.c.hash == hash_token(token), t.tokens.c.revoked_at.is_(None)
            )
        ).first()
    return (row.name, row.scope) if row else None
