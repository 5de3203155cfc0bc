"""``POST /api/v1/ingest/duplicati``: the report Duplicati's ``--send-http-url`` sends.

    --send-http-url="http://backup-host:5001/api/v1/ingest/duplicati?job=photos&token=$TOKEN"

Both of Duplicati's formats (``--send-http-result-output-format=Duplicati``, a form, or
``Json``) are read by ``ingest/duplicati.py``. Duplicati cannot send headers, so the ingest
token may be given as ``?token=`` (access logs hide it); an ``Authorization: Bearer`` header
works too. A report that is not a run (another operation, a dry run) answers 200 with
``"recorded": false``: Duplicati counts anything but 2xx as a failed report, and retries.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from backwatch.errors import Unauthorized
from backwatch.ingest.duplicati import parse_duplicati
from backwatch.services import runs as run_service
from backwatch.web.deps import check_grant, hub, json_response

router = APIRouter(prefix="/api/v1/ingest", tags=["runs"])


@router.post(
    "/duplicati",
    summary="Report a run as Duplicati's --send-http-url report (form or JSON)",
    status_code=201,
)
async def post_duplicati(
    request: Request,
    job: Annotated[
        str | None,
        Query(description="The job the run belongs to (default: the backup's name, a slug)."),
    ] = None,
    host: Annotated[
        str | None, Query(max_length=255, description="Default: the report's machine name.")
    ] = None,
    parameter: Annotated[
        str,
        Query(
            max_length=100,
            description="The form field holding the report (--send-http-message-parameter-name).",
        ),
    ] = "message",
    token: Annotated[
        str | None,
        Query(description="An ingest token, for senders that cannot set headers (Duplicati)."),
    ] = None,
) -> Response:
    h = hub(request)
    header = request.headers.get("authorization", "")
    if not header and token:
        header = f"Bearer {token}"
    if not header:
        raise Unauthorized(
            "this call needs an ingest token: add &token=<token> to Duplicati's "
            "--send-http-url (or send 'Authorization: Bearer <token>')"
        )
    grant = check_grant(h, request.app.state.token_cache, header, "ingest")
    now = h.now()
    outcome = parse_duplicati(
        await request.body(),
        request.headers.get("content-type"),
        now=now,
        job=job,
        parameter=parameter,
    )
    report = outcome.report
    if report is None:
        body = {"recorded": False, "operation": outcome.operation, "reason": outcome.reason}
        return json_response(body, 200)
    if host is not None:
        report.host = host
    report.source = "api"
    grant.check_report(report.job, report.host)
    recorded = await h.submit(run_service.record_report(report, now, actor=grant.name))
    run = recorded.run
    body = {
        "recorded": True,
        "id": run["id"],
        "job": run["job"],
        "status": run["status"],
        "kind": run.get("kind", "backup"),
        "message": run.get("message"),
        "created": recorded.created,
    }
    return json_response(body, 201 if recorded.created else 200)
