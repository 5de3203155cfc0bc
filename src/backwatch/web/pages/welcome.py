"""First run (``/welcome``, and ``/`` while there are no jobs): how to report a first run to
this very server, with its URL, its token file and (for viewers allowed to see it) a real
ping URL."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import pings
from backwatch.web.pages.common import base_url
from backwatch.web.pages.render import html_page, render
from backwatch.web.pages.viewer import viewer_for

router = APIRouter(include_in_schema=False)
FIRST_JOB = "first-backup"


async def welcome_context(request: Request) -> dict[str, Any]:
    hub = request.app.state.hub
    url = base_url(request)
    token_file = str(hub.settings.token_file.resolve())
    viewer = viewer_for(request)
    ping_url = None
    if viewer.sees_secrets:
        key = await hub.submit(pings.ensure_project_key())
        ping_url = f"{url}/ping/{key}/{FIRST_JOB}"
    return {
        "url": url,
        "token_file": token_file,
        "ping_url": ping_url,
        "first_job": FIRST_JOB,
        "snippets": snippets(url, token_file, FIRST_JOB, ping_url, create=True),
    }


def snippets(
    url: str, token_file: str, job: str, ping_url: str | None, *, create: bool = False
) -> dict[str, str]:
    """Copy-paste commands that report a run of ``job`` to this server."""
    token = f'"$(cat {shlex.quote(token_file)})"'
    body = (
        f'{{"job": "{job}", "status": "success", '
        '"started_at": "\'"$(date -u +%FT%TZ)"\'", "duration_s": 42, "size_bytes": 1048576}'
    )
    out = {
        "curl": (
            f"curl -fsS {shlex.quote(url + '/api/v1/runs')} \\\n"
            f'  -H "Authorization: Bearer {token[1:-1]}" \\\n'
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d '{body}'"
        ),
        "cli": (
            f"export BACKWATCH_URL={shlex.quote(url)}\n"
            f"export BACKWATCH_TOKEN={token}\n"
            f"backwatch push --job {job} --status success --duration 42 --size 1048576"
        ),
        "shell": (
            f"export BACKWATCH_URL={shlex.quote(url)}\n"
            f"export BACKWATCH_TOKEN={token}\n"
            'source "$(backwatch shell-lib --path)"\n'
            f'metrics_backup_start {job} "Nightly backup" /srv/data\n'
            "# … your backup commands …\n"
            'metrics_backup_complete success "backup finished"'
        ),
        "wrap": (
            f"export BACKWATCH_URL={shlex.quote(url)}\n"
            f"export BACKWATCH_TOKEN={token}\n"
            f"backwatch wrap {job} -- restic backup /srv/data"
        ),
    }
    if ping_url:
        suffix = "?create=1" if create else ""
        out["ping"] = (
            f'curl -fsS -m 10 --retry 5 "{ping_url}/start{suffix}"\n'
            "# … your backup commands …\n"
            f'curl -fsS -m 10 --retry 5 "{ping_url}/$?{suffix}"'
        )
    return out


@router.get("/welcome")
@html_page
async def welcome(request: Request) -> Response:
    return render(request, "welcome.html", await welcome_context(request), page="welcome")
