"""An acknowledged report survives ``kill -9`` of the server, and re-sending stores it once.

Four clients post 250 native reports each (client-given ids) while the server is SIGKILLed
part way. After a restart every report that got a 2xx is there, and re-sending all 1,000
leaves exactly 1,000 runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import Server

CLIENTS = 4
PER_CLIENT = 250
KILL_AFTER = 300  # acknowledgements


def _report(client: int, n: int) -> dict[str, object]:
    return {
        "id": f"dur-{client}-{n:04d}",
        "job": f"durable-{client}",
        "status": "success",
        "started_at": 1_780_000_000 + n,
        "duration_s": 1.5,
        "size_bytes": 1000 + n,
    }


def _post(url: str, token: str, body: dict[str, object]) -> int:
    """The HTTP status, or 0 when the server cannot be reached."""
    req = urllib.request.Request(
        url + "/api/v1/runs",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _stored_ids(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM runs WHERE job LIKE 'durable-%'")]
    finally:
        conn.close()


def test_acknowledged_reports_survive_sigkill_and_resending_stores_each_once(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "data").start()
    try:
        url, token = server.url, server.token
        acked: list[str] = []
        failed: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()

        def client(number: int) -> None:
            for n in range(PER_CLIENT):
                body = _report(number, n)
                status = _post(url, token, body)
                with lock:
                    if 200 <= status < 300:
                        acked.append(str(body["id"]))
                        if len(acked) == KILL_AFTER and server.proc is not None:
                            server.proc.kill()  # SIGKILL while the others are mid-request
                            killed.set()
                    else:
                        failed.append(str(body["id"]))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert killed.is_set(), "the server was not killed"
        assert failed, "every report was acknowledged: the kill came too late to test anything"
        assert server.proc is not None
        server.proc.wait(timeout=30)
        server.proc = None

        server.start()
        stored = set(_stored_ids(server.data_dir / "backwatch.db"))
        lost = [run_id for run_id in acked if run_id not in stored]
        assert not lost, f"{len(lost)} acknowledged reports were lost, e.g. {lost[:5]}"

        # Clients re-send everything (they cannot know what landed): each is stored once.
        answers: list[int] = []

        def resend(number: int) -> None:
            statuses = [_post(server.url, token, _report(number, n)) for n in range(PER_CLIENT)]
            with lock:
                answers.extend(statuses)

        threads = [threading.Thread(target=resend, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert len(answers) == CLIENTS * PER_CLIENT
        assert set(answers) <= {200, 201}, sorted(set(answers))
        assert answers.count(200) >= len(acked)  # the acknowledged ones were already there
        ids = _stored_ids(server.data_dir / "backwatch.db")
        assert len(ids) == CLIENTS * PER_CLIENT == len(set(ids))
    finally:
        server.stop()
