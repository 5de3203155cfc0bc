"""``POST /api/v1/runs`` without the framework's layers: the ingest hot path.

The FastAPI route (``web/routes/runs.py`` ``post_run``) stays the one definition of what the
endpoint does and what /docs shows. This plain ASGI middleware sits in front of the router
(inside ``BodyLimit``, so the size limit applies as before) and, for exactly
``POST /api/v1/runs``, calls that same function itself and answers its errors through the
app's own exception handlers. The answers are the same, byte for byte; what is skipped is
routing through every route, FastAPI's request/dependency machinery and two middleware
layers, about a third of the request path's CPU under load (bench/RESULTS.md).

Anything else, and any exception without a registered handler, goes on to the app as
before (an unexpected error still becomes the 500 envelope in ServerErrorMiddleware).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from backwatch.web.routes.runs import post_run

PATH = "/api/v1/runs"
Handler = Callable[[Request, Exception], Awaitable[Response]]


class IngestFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await post_run(request)
        except Exception as exc:
            handler = _handler_for(scope["app"], exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(app: Any, exc: Exception) -> Handler | None:
    """The handler Starlette's ExceptionMiddleware would pick: the nearest class in the
    exception's MRO, leaving ``Exception`` (the 500 handler) to ServerErrorMiddleware."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]  # type: ignore[no-any-return]
    return None
