"""A tool's raw output over HTTP: what ``backwatch import --format TOOL`` does, for hosts
with curl and no Python.

    restic backup --json /srv > out.json 2>&1; code=$?
    curl -H "Authorization: Bearer $TOKEN" --data-binary @out.json \\
      "http://backup-host:5001/api/v1/tool-output/restic?job=srv&exit_code=$code"

The body is read by the tool's parser and its outcome contract (docs/tool-output.md), the
same code the runner, ``import`` and ``wrap`` use. Each request is one run; a caller that
may send the same output twice gives it an ``id``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from backwatch.errors import InvalidInput
from backwatch.ingest.native import check_run_id
from backwatch.ingest.tools import parse_tool_output
from backwatch.services import runs as run_service
from backwatch.web.deps import authorize_grant, hub, json_response, time_param

router = APIRouter(prefix="/api/v1/tool-output", tags=["runs"])


@router.post(
    "/{tool}",
    summary="Report a run as the raw output of restic, borg or rsync",
    status_code=201,
)
async def post_tool_output(
    request: Request,
    tool: str,
    job: Annotated[str, Query(description="The job the run belongs to.")],
    exit_code: Annotated[
        int | None, Query(ge=-255, le=255, description="The tool's exit code ($?).")
    ] = None,
    kind: Annotated[
        str | None, Query(description="backup or check, when the output cannot tell.")
    ] = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    id: Annotated[
        str | None,
        Query(description="A run id of the caller's: sending it again stores one run."),
    ] = None,
    started_at: str | None = None,
    finished_at: str | None = None,
) -> Response:
    grant = authorize_grant(request, "ingest")
    actor = grant.name
    h = hub(request)
    now = h.now()
    if kind not in (None, "backup", "check"):
        raise InvalidInput.field("kind", "must be backup or check")
    # a tool's output is text; a byte that is not UTF-8 is kept as a replacement mark
    text = (await request.body()).decode("utf-8", "replace")
    report = parse_tool_output(
        tool,
        text,
        job=job,
        exit_code=exit_code,
        started_at=time_param(started_at, "started_at", now),
        finished_at=time_param(finished_at, "finished_at", now),
        now=now,
        kind=kind,
    )
    if id is not None:
        try:
            report.id = check_run_id(id)
        except ValueError as exc:
            raise InvalidInput.field("id", str(exc)) from None
    report.host = host
    report.source = "api"
    grant.check_report(report.job, report.host)
    recorded = await h.submit(run_service.record_report(report, now, actor=actor))
    run = recorded.run
    body = {
        "id": run["id"],
        "job": run["job"],
        "status": run["status"],
        "kind": run.get("kind", "backup"),
        "message": run.get("message"),
        "created": recorded.created,
    }
    return json_response(body, 201 if recorded.created else 200)
