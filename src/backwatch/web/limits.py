"""Request body size limit, as plain ASGI middleware (cheap on the ingest hot path)."""

from __future__ import annotations

import json
from typing import Any

from backwatch.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await reject_too_large(send, self.max_bytes)
                    return
                break
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def reject_too_large(send: Any, max_bytes: int) -> None:
    """Answer 413 before reading a body whose Content-Length is over the limit, and close."""
    err = PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    body = json.dumps(err.envelope()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
