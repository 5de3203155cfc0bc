"""Request limits, as plain ASGI middleware (cheap on the ingest hot path): the body's size,
and no NUL in the path or the query (PostgreSQL refuses NUL in text, so a ``%00`` would
otherwise reach a query as a server error; no id or parameter holds one)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from backwatch.errors import BackwatchError, InvalidInput, NotFound, PayloadTooLarge
from backwatch.web.errors import send_error


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = nul_in_request(scope)
        if refused is not None:
            await answer(send, refused)
            return
        if declared_too_large(scope, self.max_bytes):
            await reject_too_large(send, self.max_bytes)
            return
        await self.app(scope, limited(receive, self.max_bytes), send)


def declared_too_large(scope: dict, max_bytes: int) -> bool:
    """The request's Content-Length says its body is over ``max_bytes``."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value) > max_bytes
            except ValueError:
                return False
    return False


def limited(receive: Any, max_bytes: int) -> Callable[[], Awaitable[dict]]:
    """``receive`` that raises PayloadTooLarge once the body read is over ``max_bytes``
    (a body sent without Content-Length, or longer than it said)."""
    seen = 0

    async def limited_receive() -> dict:
        nonlocal seen
        message: dict = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
        return message

    return limited_receive


def nul_in_request(scope: dict) -> BackwatchError | None:
    """404 for a path with a NUL in it (no URL has one), 422 naming a query parameter with
    one; None for every ordinary request."""
    if "\x00" in scope.get("path", ""):
        return NotFound("no such URL: a path never holds NUL (%00)")
    query = scope.get("query_string") or b""
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            field = name.replace("\x00", "") or "query"
            return InvalidInput.field(field, "must not contain NUL (%00)")
    return None


async def reject_too_large(send: Any, max_bytes: int) -> None:
    """Answer 413 before reading a body whose Content-Length is over the limit, and close."""
    await answer(send, PayloadTooLarge(f"request body is larger than {max_bytes} bytes"))


async def answer(send: Any, err: BackwatchError) -> None:
    """Answer ``err`` in the error envelope before reading the body, and close."""
    await send_error(send, err, close=True)
