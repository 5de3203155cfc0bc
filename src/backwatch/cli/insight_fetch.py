"""What the insight commands (``health``, ``performance``, ``report``, ``audit``,
``dashboard``) read: over HTTP from a server's API, or in-process from the services behind
that API, so both give the same JSON."""

from __future__ import annotations

import urllib.parse
from typing import Any

from backwatch.cli.alerts import _call
from backwatch.errors import InvalidInput
from backwatch.timeutil import iso


def _get(tgt: Any, path: str, query: dict[str, Any] | None, local: Any) -> Any:
    return _call(tgt, ("GET", path, None, query), local)


def fetch_checks(tgt: Any, names: list[str] | None) -> dict[str, Any]:
    from backwatch.services import diagnostics  # the store: see cli/root.py

    query = {"checks": ",".join(names)} if names else None
    return _get(  # type: ignore[no-any-return]
        tgt, "/api/v1/health/checks", query, lambda h: diagnostics.run_checks(h, h.now(), names)
    )


def fetch_analysis(tgt: Any, job: str, period: str) -> dict[str, Any]:
    from backwatch.services import analysis  # the store: see cli/root.py

    def local(h: Any) -> Any:
        with h.read_engine.connect() as conn:
            return analysis.job_analysis(conn, h.settings, job, period, h.now())

    path = f"/api/v1/jobs/{urllib.parse.quote(job, safe='')}/analysis"
    return _get(tgt, path, {"period": period}, local)  # type: ignore[no-any-return]


#: the open alerts a report lists (the API's default page); the rest are counted
ALERTS_SHOWN = 200


def fetch_open_alerts(tgt: Any, limit: int | None = None) -> dict[str, Any]:
    """The newest ``limit`` (``ALERTS_SHOWN``) open alerts (``items``) and how many are open
    (``total``): a flood of alerts is counted, never loaded."""
    from backwatch.services import alerts  # the store: see cli/root.py

    query = {"state": "open", "limit": ALERTS_SHOWN if limit is None else limit, "counts": "true"}

    def local(h: Any) -> Any:
        with h.read_engine.connect() as conn:
            page = alerts.alert_page(conn, state="open", limit=query["limit"])
            return {**page, "counts": alerts.alert_counts(conn)}

    page = _get(tgt, "/api/v1/alerts", query, local)
    return {"items": page["items"], "total": page["counts"]["open"]}


def first_jobs(tgt: Any, limit: int) -> tuple[list[dict[str, Any]], int]:
    """At most ``limit`` jobs and how many there are in all. When they all fit, every job in
    id order (as before a fleet needed pages); else the first ``limit`` by health, problems
    first, as ``status`` shows them."""
    page = tgt.job_page(sort="id", limit=limit, counts=True)
    total = max(sum((page.get("counts") or {}).values()), len(page["items"]))
    if not page.get("next_cursor"):
        return page["items"], total
    return tgt.job_page(sort="health", limit=limit)["items"], total


def fetch_events(tgt: Any, since: float | None, kind: str | None, job: str | None,
                 limit: int) -> list[dict[str, Any]]:  # fmt: skip
    from backwatch.services import reads  # the store: see cli/root.py

    def local(h: Any) -> Any:
        if kind is not None and kind not in reads.EVENT_KINDS:  # the API's own list
            raise InvalidInput(f"--filter must be one of: {', '.join(reads.EVENT_KINDS)}")
        with h.read_engine.connect() as conn:
            rows = reads.list_events(conn, since=since, kind=kind, job=job, limit=limit)
        return {"items": [{**r, "at": iso(r["at"])} for r in rows]}

    query = {"since": since, "kind": kind, "job": job, "limit": limit}
    return _get(tgt, "/api/v1/events", query, local)["items"]  # type: ignore[no-any-return]
