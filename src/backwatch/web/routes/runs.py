"""Runs: complete reports, the lifecycle calls, and reading runs back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.domain.lifecycle import parse_status
from backwatch.errors import InvalidInput
from backwatch.ingest.lifecycle import parse_start
from backwatch.services import intake, reads, tokens
from backwatch.services import runs as run_service
from backwatch.services.deletion import delete_run
from backwatch.services.hub import Hub
from backwatch.services.views import run_out
from backwatch.web.deps import (
    TokenCache,
    authorize,
    authorize_grant,
    authorize_read,
    check_grant,
    hub,
    json_body,
    json_response,
    parse_json,
    time_param,
)

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


@router.post("", summary="Report a run (native report or seed 001 JSONL record)")
async def post_run(request: Request) -> Response:
    data, status = await ingest(
        hub(request),
        request.app.state.token_cache,
        request.headers.get("authorization", ""),
        request.body,
    )
    return json_response(data, status)


async def ingest(
    h: Hub, cache: TokenCache, authorization: str, read_body: Callable[[], Awaitable[bytes]]
) -> tuple[Any, int]:
    """What ``POST /api/v1/runs`` does, without a Request: check the token, read and parse
    the body, store the report(s) durably. Answers (JSON value, status code); errors raise.
    ``web/fastpath.py`` calls this straight from ASGI, the route above through FastAPI."""
    grant = check_grant(h, cache, authorization, "ingest")
    body = parse_json(await read_body())
    received = intake.parse_body(body, default_job=h.settings.ingest.default_job)
    intake.check_grant(received, grant)
    return intake.answer(await h.submit(intake.record(received, h.now(), actor=grant.name)))


def _authorize_for_run(request: Request, run_id: str) -> str:
    """A lifecycle call on a stored run: the token must be allowed to report for the run's
    job and host. Answers the token's name; an unknown run is left to the call's 404."""
    grant = authorize_grant(request, "ingest")
    if grant.limited:
        stored = tokens.run_reporter(hub(request).read_engine, run_id)
        if stored is not None:
            grant.check_report(*stored)
    return grant.name


@router.post("/start", summary="Open a running run; answers its id")
async def start_run(request: Request) -> Response:
    grant = authorize_grant(request, "ingest")
    actor = grant.name
    h = hub(request)
    now = h.now()
    report = parse_start(await json_body(request), now)
    grant.check_report(report.job, report.host)
    recorded = await h.submit(run_service.start_run(report, now, actor=actor))
    return json_response(recorded.ack(), 201 if recorded.created else 200)


@router.post("/{run_id}/status", summary="Progress message or lifecycle move")
async def run_status(run_id: str, request: Request) -> Response:
    return await _run_call(request, run_id, "status")


@router.post("/{run_id}/phases", summary="Start, end or record a phase")
async def run_phase(run_id: str, request: Request) -> Response:
    return await _run_call(request, run_id, "phases")


@router.post("/{run_id}/files", summary="Record backed-up files (counts always, records capped)")
async def run_files(run_id: str, request: Request) -> Response:
    return await _run_call(request, run_id, "files")


@router.post("/{run_id}/finish", summary="Finish a run with its final status and figures")
async def finish_run(run_id: str, request: Request) -> Response:
    return await _run_call(request, run_id, "finish")


async def _run_call(request: Request, run_id: str, call: str) -> Response:
    actor = _authorize_for_run(request, run_id)
    h = hub(request)
    body = await json_body(request)
    return json_response(await h.submit(intake.run_call(run_id, call, body, h.now(), actor=actor)))


@router.get("", summary="List runs, newest first, with filters and a cursor")
async def list_runs(
    request: Request,
    job: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Response:
    authorize_read(request)
    h = hub(request)
    now = h.now()
    if status is not None:
        try:
            status = parse_status(status).value
        except ValueError as exc:
            raise InvalidInput.field("status", str(exc)) from None
    if not 1 <= limit <= reads.MAX_PAGE:
        raise InvalidInput.field("limit", f"must be between 1 and {reads.MAX_PAGE}")
    with h.read_engine.connect() as conn:
        rows, next_cursor = reads.list_runs(
            conn,
            job=job,
            status=status,
            since=time_param(since, "since", now),
            until=time_param(until, "until", now),
            limit=limit,
            cursor=cursor,
        )
    return json_response({"items": [run_out(r) for r in rows], "next_cursor": next_cursor})


@router.get("/{run_id}", summary="One run with its phases, events, files and log")
async def get_run(run_id: str, request: Request) -> Response:
    authorize_read(request)
    with hub(request).read_engine.connect() as conn:
        run = reads.get_run(conn, run_id)
    return json_response(run_out(run))


@router.delete(
    "/{run_id}", summary="Delete a run (admin): a report that should never have been stored"
)
async def delete_one_run(run_id: str, request: Request) -> Response:
    actor = authorize(request, "admin")
    h = hub(request)
    return json_response(await h.submit(delete_run(run_id, h.now(), actor=actor)))
