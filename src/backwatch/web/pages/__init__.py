"""Server-rendered dashboard pages (Jinja2 templates in ``web/templates``, static files in
``web/static``). One module per page; ``router`` includes them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from backwatch.web.pages import alerts, auth, events, jobs, overview, runs, welcome

router = APIRouter(include_in_schema=False)
for module in (overview, welcome, jobs, runs, alerts, events, auth):
    router.include_router(module.router)


def mount_static(app: Any) -> None:
    """Serve ``web/static`` (CSS, JS, vendored Chart.js) at ``/static``."""

    static = Path(__file__).resolve().parent.parent / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
