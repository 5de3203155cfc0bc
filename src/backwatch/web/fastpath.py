"""``POST /api/v1/runs`` straight from ASGI: the ingest hot path.

The FastAPI route (``web/routes/runs.py`` ``post_run``) stays what /docs shows, and both it
and this path call the same ``ingest`` function, so they answer the same, byte for byte
(tested). The app (``BackwatchAPI`` in ``web/app.py``) hands exactly ``POST /api/v1/runs``
here before any of the framework's layers: no routing through every route, no middleware
stack, no Request or Response objects. Under load that was about a third of the request
path's CPU, and ingest is bound by one core (the GIL; bench/RESULTS.md).

What the layers did for this path is done here: the body size limit (``web/limits.py``),
the error envelope with ``WWW-Authenticate`` on 401 (``web/errors.py``), and a logged 500
for anything unexpected.
"""

from __future__ import annotations

import logging
from typing import Any

from backwatch.errors import BackwatchError, PayloadTooLarge
from backwatch.web import errors
from backwatch.web.deps import json_bytes
from backwatch.web.limits import reject_too_large
from backwatch.web.routes.runs import ingest

log = logging.getLogger("backwatch.web")
PATH = "/api/v1/runs"
_JSON = (b"content-type", b"application/json")
_CHALLENGE = [(b"www-authenticate", b"Bearer")]


class ClientGone(Exception):
    """The client hung up before its body arrived: there is no one to answer."""


def handles(scope: dict[str, Any]) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


async def answer(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serve one ``POST /api/v1/runs`` for ``app`` (its state holds the hub and tokens)."""
    limit = app.state.settings.server.max_body_bytes
    authorization = ""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0
            if declared > limit:
                await reject_too_large(send, limit)
                return
        elif name == b"authorization":
            authorization = value.decode("latin-1")

    async def read_body() -> bytes:
        chunks = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    headers: list[tuple[bytes, bytes]] = []
    try:
        data, status = await ingest(app.state.hub, app.state.token_cache, authorization, read_body)
    except ClientGone:
        return
    except BackwatchError as exc:
        data, status = exc.envelope(), exc.status
        if status == 401:
            headers = _CHALLENGE
    except Exception:
        log.exception("unexpected error")
        data, status = errors.envelope("internal", errors.INTERNAL), 500
    body = json_bytes(data)
    headers = [*headers, (b"content-length", str(len(body)).encode()), _JSON]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
