"""The one error envelope: ``{"error": {"code", "message", "details"?}}`` for every failure."""

from __future__ import annotations

import logging
from typing import Any

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
    """The envelope in the API's own encoding (``json_bytes``): a message that quotes what
    the client sent (a field name with a lone surrogate) cannot fail the answer itself."""
    body = json_bytes(envelope(code, message, details))
    return Response(body, status_code=status, media_type="application/json")


def error_answer(exc: Exception) -> tuple[int, bytes, dict[str, str]]:
    """Any exception → (status, JSON body, extra headers): a BackwatchError's envelope (with
    ``WWW-Authenticate`` on 401), anything else a logged 500. The app's handlers, the body
    limit (``web/limits.py``) and the ingest fast path (``web/fastpath.py``) all answer so."""
    if isinstance(exc, BackwatchError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return exc.status, json_bytes(exc.envelope()), headers
    log.error("unexpected error", exc_info=exc)
    return 500, json_bytes(envelope("internal", INTERNAL)), {}


async def send_error(send: Any, exc: Exception, *, close: bool = False) -> None:
    """Answer ``exc`` straight from ASGI, before the framework (the host check, the body
    limit, the ingest fast path), with the headers a Response would carry; ``close``: and
    close the connection (its body was not read)."""
    status, body, extra = error_answer(exc)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send_json(send, status, body, headers)


async def send_json(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON answer straight from ASGI: ``headers``, then the length and type a Response
    puts last (so the fast path answers byte for byte as the route does)."""
    start = [*(headers or ()), (b"content-length", str(len(body)).encode()), _JSON]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


_JSON = (b"content-type", b"application/json")


def _answer(exc: Exception) -> Response:
    status, body, headers = error_answer(exc)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(BackwatchError)
    async def _backwatch(_request: Request, exc: BackwatchError) -> Response:
        return _answer(exc)

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
        return _answer(exc)
