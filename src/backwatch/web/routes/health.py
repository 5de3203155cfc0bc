"""Is backwatch itself well: ``/health`` (monitors), ``/livez`` and ``/readyz`` (load
balancers, orchestrators). None needs a token; all answer JSON.

- ``/livez``: the process serves requests. 200 always; restart it only when this fails.
- ``/readyz``: it can store reports now: the database answers, the schema is current, the
  writer runs and the database is not refusing its writes, the data disk is not full.
  200 ``{"status": "ready"}``, else 503 with the reasons (and the API's error envelope).
- ``/health``: seed 001's ``{"status", …}`` with the same checks: ``ok`` (200),
  ``degraded`` (200: a warning, e.g. the data disk over its warning share, or a critical
  share that still leaves room) or ``error`` (503, exactly when ``/readyz`` is 503).

The checks are services/selfmon.py's ``assess``: cheap, taken when asked.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from backwatch import __version__
from backwatch.errors import StoreUnavailable
from backwatch.services import reads
from backwatch.services.hub import Hub
from backwatch.services.selfmon import Assessment, assess
from backwatch.web.deps import hub, json_response

router = APIRouter(tags=["system"])


def _failing(found: Assessment) -> list[dict[str, Any]]:
    return [{"name": c.name, "status": c.status, "detail": c.detail} for c in found.blocking]


def _error(found: Assessment) -> dict[str, Any]:
    message = f"backwatch cannot store reports now: {found.reasons()}"
    return {"code": StoreUnavailable.code, "message": message}


@router.get("/livez", summary="Liveness: the process serves requests (always 200)")
async def livez() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: reports can be stored now (200), or why not (503)")
async def readyz(request: Request) -> Response:
    h = hub(request)
    found = await run_in_threadpool(assess, h, h.now())
    if found.blocking:
        body = {"status": "not_ready", "failing": _failing(found), "error": _error(found)}
        return json_response(body, status=503)
    return json_response({"status": "ready"})


def _health(h: Hub) -> tuple[dict[str, Any], int]:
    found = assess(h, h.now())
    database_ok = found.checks[0].status == "ok"
    body: dict[str, Any] = {
        "status": found.status,
        "version": __version__,
        "database": h.dialect if database_ok else "unreachable",
    }
    if database_ok:
        try:  # cheap on any size: jobs are few, their snapshot carries the run totals
            with h.read_engine.connect() as conn:
                body["jobs"], body["runs_recorded"] = reads.totals(conn)
        except Exception:  # the checks said it answered a moment ago: leave the counts out
            pass
    if found.status != "ok":
        body["detail"] = found.reasons()
    body["checks"] = [asdict(c) for c in found.checks]
    if found.blocking:
        body["failing"] = _failing(found)
        body["error"] = _error(found)
        return body, 503
    return body, 200


@router.get("/health", summary="backwatch's own health: ok, degraded (200) or error (503)")
async def health(request: Request) -> Response:
    body, status = await run_in_threadpool(_health, hub(request))
    return json_response(body, status=status)
