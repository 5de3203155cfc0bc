"""The one error envelope: ``{"error": {"code", "message", "details"?}}`` for every failure."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from backwatch.errors import BackwatchError
from backwatch.ingest._validation import field_path
from backwatch.web.deps import json_bytes

log = logging.getLogger("backwatch.web")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


INTERNAL = "internal error; see the server log"


def envelope(code: str, message: str, details: list | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(status: int, code: str, message: str, details: list | None = None) -> Response:
    return _json(envelope(code, message, details), status)


def _json(body: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    """The envelope in the API's own encoding (``json_bytes``): a message that quotes what
    the client sent (a field name with a lone surrogate) cannot fail the answer itself."""
    return Response(
        json_bytes(body), status_code=status, media_type="application/json", headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(BackwatchError)
    async def _backwatch(_request: Request, exc: BackwatchError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _json(exc.envelope(), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        details = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if p not in ("query", "path", "body", "header")]
            details.append({"field": field_path(tuple(loc)), "problem": err["msg"]})
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return error_response(422, "invalid", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such URL; see /docs for the API"
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return error_response(500, "internal", INTERNAL)
