"""The built-in engine's snapshots of a ``tool = "builtin"`` job: list, read, scan for lost
files, restore and verify (``services.snapshots``; each runs in a thread: they read
manifests and archives and walk the sources). ``?dest=N`` picks another destination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from backwatch.services import snapshots
from backwatch.web.deps import authorize, authorize_read, hub, json_body, json_response

router = APIRouter(prefix="/api/v1/jobs", tags=["snapshots"])


async def _answer(work: Callable[[], Any]) -> Response:
    """``work()`` and its JSON encoding in a thread (a scan or restore of 100 k files
    answers megabytes)."""
    return await run_in_threadpool(lambda: json_response(work()))


@router.get("/{job_id}/snapshots", summary="A builtin job's snapshots, newest first")
async def list_snapshots(request: Request, job_id: str, dest: int = 0) -> Response:
    authorize_read(request)
    h = hub(request)
    return await _answer(lambda: snapshots.list_snapshots(h, job_id, dest))


@router.get(
    "/{job_id}/snapshots/{snapshot}",
    summary="One snapshot (an id, a unique prefix or 'latest') and a page of its entries",
)
async def get_snapshot(
    request: Request,
    job_id: str,
    snapshot: str,
    dest: int = 0,
    path: str | None = None,
    limit: int = snapshots.DEFAULT_ENTRIES,
    cursor: str | None = None,
) -> Response:
    authorize_read(request)
    h = hub(request)
    return await _answer(
        lambda: snapshots.snapshot_detail(
            h, job_id, snapshot, dest=dest, path=path, limit=limit, cursor=cursor
        )
    )


@router.get("/{job_id}/scan", summary="Files lost, changed or never backed up since the latest")
async def scan_job(request: Request, job_id: str, dest: int = 0) -> Response:
    authorize_read(request)
    h = hub(request)
    return await _answer(lambda: snapshots.scan(h, job_id, dest))


@router.post("/{job_id}/restore", summary="Restore a snapshot into a directory on the server")
async def restore_job(request: Request, job_id: str, dest: int = 0) -> Response:
    actor = authorize(request, "admin")
    req = snapshots.parse_restore(await json_body(request))
    h = hub(request)
    return await _answer(lambda: snapshots.restore(h, job_id, req, actor=actor, dest=dest))


@router.post("/{job_id}/verify", summary="Re-hash a snapshot's files (all or a sample)")
async def verify_job(request: Request, job_id: str, dest: int = 0) -> Response:
    authorize(request, "admin")
    req = snapshots.parse_verify(await json_body(request))
    h = hub(request)
    return await _answer(lambda: snapshots.verify(h, job_id, req, dest=dest))
