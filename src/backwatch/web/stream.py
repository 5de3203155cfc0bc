"""``GET /api/v1/stream``: Server-Sent Events for live pages.

After every committed write batch the hub calls its listeners, from the writer thread, with
the list of changes (``{"type": "run", "id", "job", "status"}``, ``{"type": "job", "id"}``,
alert changes …). :class:`Broadcaster` hands each list to the event loop with
``call_soon_threadsafe`` and fans it out to one bounded queue per connected client. A slow
client loses messages, never blocks the writer: each message only says "this changed, look
again", and the next one says it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from backwatch.errors import StoreUnavailable, Unauthorized
from backwatch.services.hub import Hub
from backwatch.web.pages.viewer import viewer_for

router = APIRouter(tags=["overview"])
QUEUE_SIZE = 64
HEARTBEAT_S = 15.0
RETRY_MS = 3000


class Broadcaster:
    """Fan-out of hub changes to SSE clients; one per app."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()
        self._hub: Hub | None = None

    def attach(self, hub: Hub) -> None:
        self._hub = hub
        hub.listeners.append(self.on_commit)

    def detach(self) -> None:
        """Stop listening, and end every open stream (each gets a ``None``)."""
        if self._hub is not None and self.on_commit in self._hub.listeners:
            self._hub.listeners.remove(self.on_commit)
        self._hub = None
        for queue in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def on_commit(self, changes: list[dict[str, Any]]) -> None:
        """Called in the writer thread after a commit."""
        if self.clients and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish, list(changes))

    def publish(self, changes: list[dict[str, Any]]) -> None:
        for queue in self.clients:
            try:
                queue.put_nowait(changes)
            except asyncio.QueueFull:
                pass  # that client is behind; it refreshes on the next message anyway

    def subscribe(self) -> asyncio.Queue[list[dict[str, Any]] | None]:
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(QUEUE_SIZE)
        self.clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[list[dict[str, Any]] | None]) -> None:
        self.clients.discard(queue)


def install(app: Any, hub: Hub) -> Broadcaster:
    """Create the app's broadcaster on the running loop and listen to ``hub``."""
    broadcaster = Broadcaster(asyncio.get_running_loop())
    broadcaster.attach(hub)
    app.state.broadcaster = broadcaster
    return broadcaster


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(broadcaster: Broadcaster, request: Request) -> AsyncIterator[bytes]:
    queue = broadcaster.subscribe()
    try:
        yield f"retry: {RETRY_MS}\n\n".encode() + _event("hello", {"ok": True})
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives with a message, and the stream would never end
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    changes = await queue.get()
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if changes is None:  # the server is stopping
                return
            yield _event("change", changes)
    finally:
        broadcaster.unsubscribe(queue)


@router.get(
    "/api/v1/stream",
    summary="Server-Sent Events: 'change' messages listing runs, jobs and alerts that changed",
)
async def stream(request: Request) -> StreamingResponse:
    viewer = viewer_for(request)
    if not viewer.may_read:
        raise Unauthorized(
            "the stream needs a token: sign in to the dashboard, or send "
            "'Authorization: Bearer <token>'"
        )
    broadcaster: Broadcaster | None = getattr(request.app.state, "broadcaster", None)
    if broadcaster is None:
        raise StoreUnavailable("the live stream is not running yet; try again in a moment")
    return StreamingResponse(
        _events(broadcaster, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
