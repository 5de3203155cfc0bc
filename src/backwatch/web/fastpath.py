"""``POST /api/v1/runs`` straight from ASGI: the ingest hot path.

The FastAPI route (``web/routes/runs.py`` ``post_run``) stays what /docs shows, and both it
and this path call the same ``ingest`` function, so they answer the same, byte for byte
(tested). The app (``BackwatchAPI`` in ``web/app.py``) hands exactly ``POST /api/v1/runs``
here before any of the framework's layers: no routing through every route, no middleware
stack, no Request or Response objects. Under load that was about a third of the request
path's CPU, and ingest is bound by one core (the GIL; bench/RESULTS.md).

What the layers did for this path is done here with their own code: the body size limit
(``web/limits.py``), and the error envelope with ``WWW-Authenticate`` on 401 or a logged
500 for anything unexpected (``web/errors.py``).
"""

from __future__ import annotations

from typing import Any

from backwatch.web import errors, limits
from backwatch.web.deps import json_bytes
from backwatch.web.routes.runs import ingest

PATH = "/api/v1/runs"


class ClientGone(Exception):
    """The client hung up before its body arrived: there is no one to answer."""


def handles(scope: dict[str, Any]) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


async def answer(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serve one ``POST /api/v1/runs`` for ``app`` (its state holds the hub and tokens)."""
    limit = app.state.settings.server.max_body_bytes
    if limits.declared_too_large(scope, limit):
        await limits.reject_too_large(send, limit)
        return
    authorization = ""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    receive_limited = limits.limited(receive, limit)

    async def read_body() -> bytes:
        chunks = []
        while True:
            message = await receive_limited()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    try:
        data, status = await ingest(app.state.hub, app.state.token_cache, authorization, read_body)
    except ClientGone:
        return
    except Exception as exc:
        await errors.send_error(send, exc)
        return
    await errors.send_json(send, status, json_bytes(data))
