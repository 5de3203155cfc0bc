"""Jobs: list with health, read, change, pause and resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import InvalidInput
from backwatch.ingest.native import check_job_id
from backwatch.services import jobs as job_service
from backwatch.services.views import job_out, read_job, read_jobs
from backwatch.settings import JobSettings
from backwatch.timeutil import parse_duration
from backwatch.web.deps import (
    authorize,
    authorize_grant,
    authorize_read,
    hub,
    json_body,
    json_response,
)

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _out(
    request: Request, row: dict[str, Any], now: float, secrets: bool | None = None
) -> dict[str, Any]:
    h = hub(request)
    base = h.settings.server.base_url or str(request.base_url)
    out = job_out(row, now, stuck_minutes=h.settings.alerts.stuck_minutes, base_url=base)
    if not (_can_see_secrets(request) if secrets is None else secrets):
        out.pop("ping_url")
    return out


def _can_see_secrets(request: Request) -> bool:
    if not request.headers.get("authorization"):
        return False
    try:  # ping URLs report without a token: only for tokens that may report for any job
        return authorize_grant(request, "ingest").reports_for_any_job
    except Exception:
        return False


@router.get("", summary="All jobs with health, last run and next due time")
async def list_jobs(request: Request) -> Response:
    authorize_read(request)
    h = hub(request)
    secrets = _can_see_secrets(request)  # once per request, not once per job

    def build() -> Response:
        now = h.now()
        with h.read_engine.connect() as conn:
            rows = read_jobs(conn)
        return json_response({"items": [_out(request, r, now, secrets) for r in rows]})

    # Rebuilt after every write; otherwise reused for up to 2 s (health moves with the
    # clock): 500 jobs cost ~40 ms to build, and dashboards poll this.
    cached = h.cached(("jobs", secrets, str(request.base_url)), build, max_age_s=2.0)
    return Response(cached.body, media_type="application/json")


@router.get("/{job_id}", summary="One job")
async def get_job(job_id: str, request: Request) -> Response:
    authorize_read(request)
    h = hub(request)
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, h.now()))


#: what PUT /api/v1/jobs/{id} may change; the rest of a job lives in backwatch.toml
PUT_FIELDS = frozenset(
    {"description", "host", "backup_path", "tool", "schedule", "timezone", "grace", "timeout",
     "tags", "paused"}
)  # fmt: skip


def job_patch(body: Any) -> dict[str, Any]:
    """A PUT body ({description, schedule, grace: '1h', timeout, tags, paused, …}) → columns."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    body = dict(body)
    body.pop("id", None)
    for key in sorted(body):
        if key not in PUT_FIELDS:
            known = key in JobSettings.model_fields
            raise InvalidInput.field(
                key,
                "is set in backwatch.toml, not over the API" if known else "unknown job field",
            )
    try:
        parsed = JobSettings.model_validate({"id": "x", **body})
    except Exception as exc:  # pydantic.ValidationError
        from pydantic import ValidationError

        from backwatch.ingest._validation import invalid_from

        if isinstance(exc, ValidationError):
            raise invalid_from(exc) from None
        raise
    patch: dict[str, Any] = {}
    for key in ("description", "host", "backup_path", "tool", "schedule", "timezone", "tags"):
        if key in body:
            patch[key] = getattr(parsed, key)
    if "paused" in body:
        patch["paused"] = parsed.paused
    if "grace" in body:
        patch["grace_s"] = parse_duration(parsed.grace)
    if "timeout" in body:
        patch["timeout_s"] = parse_duration(parsed.timeout) if parsed.timeout else None
    return patch


@router.put("/{job_id}", summary="Create or change a job")
async def put_job(job_id: str, request: Request) -> Response:
    actor = authorize(request, "admin")
    try:
        check_job_id(job_id)
    except ValueError as exc:
        raise InvalidInput.field("id", str(exc)) from None
    h = hub(request)
    patch = job_patch(await json_body(request))
    now = h.now()

    def op(conn: Any, unit: Any) -> None:
        job_service.ensure_job(conn, unit, job_id, now, actor=actor, origin="api")
        job_service.update_job(conn, unit, job_id, patch, now, actor)

    await h.submit(op)
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, now))


async def _set_paused(request: Request, job_id: str, paused: bool) -> Response:
    actor = authorize(request, "operate")
    h = hub(request)
    now = h.now()
    await h.submit(
        lambda conn, unit: job_service.set_paused(conn, unit, job_id, paused, now, actor)
    )
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, now))


@router.post("/{job_id}/pause", summary="Pause: no alerts, health 'paused'")
async def pause_job(job_id: str, request: Request) -> Response:
    return await _set_paused(request, job_id, True)


@router.post("/{job_id}/resume", summary="Resume a paused job")
async def resume_job(job_id: str, request: Request) -> Response:
    return await _set_paused(request, job_id, False)
