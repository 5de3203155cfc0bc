"""Secrets out of the texts the store keeps and hands out: logs, messages, ping bodies,
event details. The masking itself is ``backwatch.masking``; this adds the one thing only
the database knows, which words of a text are ping keys (a job's or the project's).

Texts are masked when stored (the ingest services, ping bodies) and again when read for
showing (``queries.get_run``, ``queries.list_events``), so a run stored before a key
existed, or by an older version, does not show it either. One lookup per text (or per
page of events), and none when no word has a ping key's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, select

from backwatch.masking import Masker, hide_ping_keys, mask_shapes, ping_key_candidates
from backwatch.store import tables as t

#: ``meta_kv`` key of the project ping key (services/pings.py creates it)
PROJECT_KEY = "ping_key"
_CHUNK = 500
#: engine → a Masker that also knows the secrets of the configured jobs (``know_secrets``)
_KNOWN: WeakKeyDictionary[Engine, Masker] = WeakKeyDictionary()


def know_secrets(engines: Iterable[Engine], secrets: Iterable[str]) -> None:
    """Mask ``secrets`` (the configured jobs' env values and password commands) in every
    text stored or read through ``engines``: a report from a host whose environment does
    not hold them, or a run stored before they were configured."""
    masker = Masker(secrets)
    for engine in engines:
        if masker.secrets:
            _KNOWN[engine] = masker
        else:
            _KNOWN.pop(engine, None)


def _masker(conn: Connection) -> Callable[[str], str]:
    return _KNOWN.get(conn.engine) or mask_shapes


def known_ping_keys(conn: Connection, candidates: Iterable[str]) -> set[str]:
    """Those of ``candidates`` that are some job's ping key or check UUID (a ping URL too),
    or the project ping key."""
    wanted = sorted(set(candidates))
    if not wanted:
        return set()
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            conn.execute(select(t.jobs.c.ping_key).where(t.jobs.c.ping_key.in_(chunk))).scalars()
        )
    uuids = sorted({c.lower() for c in wanted if len(c) == 36})
    for start in range(0, len(uuids), _CHUNK):
        chunk = uuids[start : start + _CHUNK]
        codes = set(
            conn.execute(
                select(t.jobs.c.check_uuid).where(t.jobs.c.check_uuid.in_(chunk))
            ).scalars()
        )
        found.update(c for c in wanted if c.lower() in codes)
    project = conn.execute(
        select(t.meta_kv.c.value).where(t.meta_kv.c.key == PROJECT_KEY)
    ).scalar_one_or_none()
    if project is not None and project in wanted:
        found.add(project)
    return found


def redact_texts(conn: Connection, texts: list[str | None]) -> list[str | None]:
    """``texts`` with every secret masked: shapes (``backwatch.masking``) and ping keys."""
    mask = _masker(conn)
    shaped = [mask(x) if x else x for x in texts]
    keys = known_ping_keys(conn, ping_key_candidates(*shaped))
    if not keys:
        return shaped
    return [hide_ping_keys(x, keys) if x else x for x in shaped]


def redact_text(conn: Connection, text: str | None) -> str | None:
    """One text, masked (see ``redact_texts``)."""
    if not text:
        return text
    return redact_texts(conn, [text])[0]


def redact_messages(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run rows as read for a list, their messages masked (one lookup for the page): rows
    stored before their secrets were masked at store time show masked too."""
    masked = redact_texts(conn, [row.get("message") for row in rows])
    for row, message in zip(rows, masked, strict=True):
        if message != row.get("message"):
            row["message"] = message
    return rows


def redact_report(conn: Connection, report: Any) -> Any:
    """A RunReport with its message and log masked (the same object when nothing changed)."""
    message, log = redact_texts(conn, [report.message, report.log])
    if message == report.message and log == report.log:
        return report
    return replace(report, message=message, log=log)


def redact_reports(conn: Connection, reports: list[Any]) -> list[Any]:
    """Many RunReports (a batch of the group-commit writer) with one lookup."""
    texts: list[str | None] = []
    for report in reports:
        texts += [report.message, report.log]
    if not any(texts):
        return reports
    masked = redact_texts(conn, texts)
    out = []
    for index, report in enumerate(reports):
        message, log = masked[2 * index], masked[2 * index + 1]
        if message != report.message or log != report.log:
            report = replace(report, message=message, log=log)
        out.append(report)
    return out


def redact_detail(detail: Any, keys: set[str], mask: Callable[[str], str] = mask_shapes) -> Any:
    """An event's detail (JSON) with its strings masked; ``keys``: the ping keys to hide."""
    if isinstance(detail, str):
        return hide_ping_keys(mask(detail), keys)
    if isinstance(detail, dict):
        return {k: redact_detail(v, keys, mask) for k, v in detail.items()}
    if isinstance(detail, list):
        return [redact_detail(v, keys, mask) for v in detail]
    return detail


def detail_strings(detail: Any) -> list[str]:
    """Every string inside an event's detail (to look the ping keys up once for a page)."""
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, dict):
        return [s for v in detail.values() for s in detail_strings(v)]
    if isinstance(detail, list):
        return [s for v in detail for s in detail_strings(v)]
    return []


def redact_events(conn: Connection, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as read, their details masked, with one lookup for the whole list."""
    strings = [s for e in events for s in detail_strings(e.get("detail"))]
    if not strings:
        return events
    keys = known_ping_keys(conn, ping_key_candidates(*strings))
    mask = _masker(conn)
    return [{**e, "detail": redact_detail(e.get("detail"), keys, mask)} for e in events]
