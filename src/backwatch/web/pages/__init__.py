"""Server-rendered dashboard pages (Jinja2 templates in ``web/templates``, static files in
``web/static``). One module per page; ``router`` includes them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response

from backwatch.web.pages import alerts, auth, events, jobs, overview, runs, welcome

router = APIRouter(include_in_schema=False)
for module in (overview, welcome, jobs, runs, alerts, events, auth):
    router.include_router(module.router)


# The pages link static files with ``?v=<version>``, so an upgrade is fetched at once; a day
# is long enough to spare every page view the round trip, short enough for a checkout whose
# files change without a new version (the ETag revalidates after that).
STATIC_CACHE_CONTROL = "public, max-age=86400"


class _CachedStaticFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = STATIC_CACHE_CONTROL
        return response


def mount_static(app: Any) -> None:
    """Serve ``web/static`` (CSS, JS, vendored Chart.js) at ``/static``: gzip-compressed for
    clients that accept it (Chart.js is 210 KB, 70 KB compressed) and cached for a day."""

    static = Path(__file__).resolve().parent.parent / "static"
    files = _CachedStaticFiles(directory=str(static))
    app.mount("/static", GZipMiddleware(files, minimum_size=1024), name="static")
