"""``GET /api/v1/stream`` on a real server: a committed run reaches a connected client."""

from __future__ import annotations

import http.client
import json
import signal
import time
import urllib.request

from tests.conftest import Server


def _post_run(server: Server, job: str) -> str:
    body = json.dumps({"job": job, "status": "success", "started_at": time.time() - 60}).encode()
    request = urllib.request.Request(
        server.url + "/api/v1/runs",
        data=body,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["id"]  # type: ignore[no-any-return]


def _events(resp: http.client.HTTPResponse):
    """(event, data) pairs as they arrive."""
    name, data = None, []
    while True:
        line = resp.readline().decode()
        if not line:
            return
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name:
            yield name, json.loads("\n".join(data))
            name, data = None, []


def test_a_reported_run_is_pushed_to_stream_clients(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/v1/stream")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("content-type", "").startswith("text/event-stream")
    events = _events(resp)
    assert next(events)[0] == "hello"
    run_id = _post_run(server, "streamed")
    seen: list[dict] = []
    for name, data in events:
        assert name == "change"
        seen.extend(data)
        if any(c.get("type") == "run" and c.get("id") == run_id for c in seen):
            break
    run = next(c for c in seen if c.get("type") == "run")
    assert run == {"type": "run", "id": run_id, "job": "streamed", "status": "success"}
    conn.close()


def test_the_server_stops_promptly_with_a_client_connected(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/v1/stream")
    resp = conn.getresponse()
    assert next(_events(resp))[0] == "hello"
    proc = server.proc
    assert proc is not None
    server.stop()  # SIGTERM: must not wait for the stream to end by itself (then SIGKILL)
    # 0, or -SIGTERM re-raised by uvicorn after a clean shutdown; -SIGKILL means it hung
    assert proc.returncode in (0, -signal.SIGTERM), "the server hung on the open stream"
    conn.close()


def test_detaching_the_broadcaster_ends_open_streams() -> None:
    """The lifespan's end closes every stream at once, with no heartbeat or timeout."""
    import asyncio

    from backwatch.web.stream import Broadcaster, _events

    class Client:
        async def is_disconnected(self) -> bool:
            return False

    async def scenario() -> list[bytes]:
        broadcaster = Broadcaster(asyncio.get_running_loop())
        stream = _events(broadcaster, Client())  # type: ignore[arg-type]
        got = [await stream.__anext__()]  # the hello
        broadcaster.publish([{"type": "run", "id": "r1"}])
        got.append(await stream.__anext__())
        broadcaster.detach()
        got.extend([chunk async for chunk in stream])
        assert broadcaster.clients == set()
        return got

    hello, change, *rest = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert b"event: hello" in hello and b'"id":"r1"' in change and rest == []
