"""API tokens: random secrets shown once, stored as SHA-256 hashes, with a scope.

Scopes (docs/api.md, "Authentication"):

* ``read``: read when reads are protected (``[auth] read = "token"``);
* ``ingest``: report runs (and read). It may be limited to job and host patterns (globs:
  ``web-*``, ``db-dump``); without patterns it reports for any job, as every ``ingest``
  token did before patterns existed;
* ``operate``: act on jobs and alerts (run, pause, resume, ack, resolve, snooze, test a
  notification) and read. It does *not* report runs: whoever silences alerts should not
  also be able to send the success report that clears them, and a host's reporting token
  should not be able to silence its own failures;
* ``admin``: everything, including job changes, tokens, deleting runs and restores.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from backwatch.errors import Conflict, Forbidden, InvalidInput, NotFound
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.dialect import lock_for_transaction

SCOPES = ("read", "ingest", "operate", "admin")
#: what each scope may do besides itself; admin may do everything
_IMPLIES = {"read": {"read"}, "ingest": {"ingest", "read"}, "operate": {"operate", "read"}}
PREFIX = "bw_"
MAX_PATTERNS = 32
MAX_PATTERN_LENGTH = 128
#: what a job pattern may hold: a job id's characters and the glob characters
_JOB_PATTERN = re.compile(r"[a-z0-9._\-*?\[\]!]+")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allows(scope: str, needed: str) -> bool:
    """Whether a token of ``scope`` may make a call that needs ``needed``."""
    return scope == "admin" or needed in _IMPLIES.get(scope, ())


@dataclass(frozen=True)
class Grant:
    """What an active token may do: its scope and, for ``ingest``, the jobs and hosts it may
    report for (glob patterns; none means any)."""

    name: str
    scope: str
    jobs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def allows(self, needed: str) -> bool:
        return allows(self.scope, needed)

    @property
    def limited(self) -> bool:
        """True when the token may report only for some jobs or hosts."""
        return bool(self.jobs or self.hosts)

    @property
    def reports_for_any_job(self) -> bool:
        """May report for every job: the test for seeing ping URLs and the project ping key,
        which report for a job without a token."""
        return self.allows("ingest") and not self.limited

    def check_report(self, job: str, host: str | None) -> None:
        """Raise Forbidden unless this token may report a run of ``job`` from ``host``."""
        if self.jobs and not any(fnmatchcase(job, p) for p in self.jobs):
            raise Forbidden(
                f"token {self.name!r} may report only for jobs matching {_listed(self.jobs)}, "
                f"not for job {job!r}"
            )
        if not self.hosts:
            return
        if not host:
            raise Forbidden(
                f"token {self.name!r} may report only from hosts matching "
                f'{_listed(self.hosts)}; this report names no host (send "host")'
            )
        if not any(fnmatchcase(host.lower(), p.lower()) for p in self.hosts):
            raise Forbidden(
                f"token {self.name!r} may report only from hosts matching "
                f"{_listed(self.hosts)}, not from host {host!r}"
            )


def _listed(patterns: tuple[str, ...]) -> str:
    return ", ".join(repr(p) for p in patterns)


def scope_refusal(name: str, scope: str, needed: str) -> Forbidden:
    """The 403 for a token whose scope is too small, saying how to get the right one."""
    return Forbidden(
        f"token {name!r} has scope {scope!r}; this call needs {needed!r} "
        f"(create one with `backwatch token create --scope {needed}`)"
    )


def check_patterns(field: str, patterns: list[str] | tuple[str, ...] | None) -> list[str]:
    """Validated glob patterns (``fnmatch``: ``*``, ``?``, ``[abc]``), duplicates dropped."""
    out: list[str] = []
    for pattern in patterns or ():
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_LENGTH:
            raise InvalidInput.field(
                field, f"each pattern must be 1–{MAX_PATTERN_LENGTH} characters"
            )
        if any(c.isspace() or not c.isprintable() for c in pattern):
            raise InvalidInput.field(field, f"{pattern!r} holds a space or control character")
        if field == "jobs" and not _JOB_PATTERN.fullmatch(pattern):
            raise InvalidInput.field(
                field,
                f"{pattern!r} can never match a job id (lowercase letters, digits, '.', '_', "
                "'-', and the globs * ? [ ])",
            )
        if pattern not in out:
            out.append(pattern)
    if len(out) > MAX_PATTERNS:
        raise InvalidInput.field(field, f"at most {MAX_PATTERNS} patterns")
    return out


def create_token(
    name: str,
    scope: str,
    now: float,
    *,
    actor: str = "cli",
    jobs: list[str] | tuple[str, ...] | None = None,
    hosts: list[str] | tuple[str, ...] | None = None,
) -> Any:
    """Op → (token text, row). The text is returned once and never stored.

    ``jobs`` and ``hosts`` (glob patterns) limit an ``ingest`` token to reports of matching
    jobs from matching hosts; other scopes take none."""
    if scope not in SCOPES:
        raise InvalidInput.field("scope", f"must be one of: {', '.join(SCOPES)}")
    if not name or len(name) > 128:
        raise InvalidInput.field("name", "must be 1–128 characters")
    job_patterns = check_patterns("jobs", jobs)
    host_patterns = check_patterns("hosts", hosts)
    if (job_patterns or host_patterns) and scope != "ingest":
        raise InvalidInput.field(
            "scope",
            f"job and host patterns limit an ingest token; scope {scope!r} takes none",
        )
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
            "job_patterns": job_patterns or None,
            "host_patterns": host_patterns or None,
            "created_at": now,
        }
        conn.execute(t.tokens.insert().values(**row))
        detail = {"scope": scope, "jobs": job_patterns, "hosts": host_patterns}
        unit.event(
            at=now,
            kind="auth",
            entity="token",
            entity_id=name,
            to_state="created",
            actor=actor,
            detail=detail,
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
    """Every token (never its hash), oldest first; ``jobs``/``hosts`` are its patterns."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.tokens.c.name,
                t.tokens.c.prefix,
                t.tokens.c.scope,
                t.tokens.c.job_patterns,
                t.tokens.c.host_patterns,
                t.tokens.c.created_at,
                t.tokens.c.last_used_at,
                t.tokens.c.revoked_at,
            ).order_by(t.tokens.c.created_at)
        ).mappings()
        out = []
        for r in rows:
            item = dict(r)
            item["jobs"] = list(item.pop("job_patterns") or [])
            item["hosts"] = list(item.pop("host_patterns") or [])
            out.append(item)
        return out


def create_first_token(now: float) -> Any:
    """Op → (token text, row) of an admin token named "default", or None when an active
    token exists already. Instances starting together on one database make one between
    them: the check and the insert are one transaction under a lock."""
    create = create_token("default", "admin", now, actor="serve")

    def op(conn: Connection, unit: WriteUnit) -> tuple[str, dict[str, Any]] | None:
        lock_for_transaction(conn, "backwatch-first-token")
        active = select(t.tokens.c.id).where(t.tokens.c.revoked_at.is_(None)).limit(1)
        if conn.execute(active).first() is not None:
            return None
        result: tuple[str, dict[str, Any]] = create(conn, unit)
        return result

    return op


def active_token_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(t.tokens.c.id).where(t.tokens.c.revoked_at.is_(None))).all())


def lookup(engine: Engine, token: str) -> Grant | None:
    """The Grant of an active token, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                t.tokens.c.name,
                t.tokens.c.scope,
                t.tokens.c.job_patterns,
                t.tokens.c.host_patterns,
            ).where(t.tokens.c.hash == hash_token(token), t.tokens.c.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    return Grant(row.name, row.scope, tuple(row.job_patterns or ()), tuple(row.host_patterns or ()))


def run_reporter(engine: Engine, run_id: str) -> tuple[str, str | None] | None:
    """(job, host) of a stored run, or None: what a limited token's lifecycle call is
    checked against."""
    with engine.connect() as conn:
        row = conn.execute(select(t.runs.c.job, t.runs.c.host).where(t.runs.c.id == run_id)).first()
    return (row.job, row.host) if row else None
