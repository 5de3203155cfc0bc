"""The one error envelope: ``{"error": {"code", "message", "details"?}}`` for every failure."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backwatch.errors import BackwatchError
from backwatch.ingest._validation import field_path

log = logging.getLogger("backwatch.web")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


INTERNAL = "internal error; see the server log"


def envelope(code: str, message: str, details: list | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(
    status: int, code: str, message: str, details: list | None = None
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(BackwatchError)
    async def _backwatch(_request: Request, exc: BackwatchError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = JSONResponse(exc.envelope(), status_code=exc.status, headers=headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if p not in ("query", "path", "body", "header")]
            details.append({"field": field_path(tuple(loc)), "problem": err["msg"]})
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return error_response(422, "invalid", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such URL; see /docs for the API"
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal", INTERNAL)
