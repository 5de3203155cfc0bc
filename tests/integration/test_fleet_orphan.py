"""A leader killed while it runs a scheduled job (issue 18, "a leader that dies mid-run"):
real ``serve`` processes on the real PostgreSQL, ``kill -9`` of the leader while its job's
command runs. The other instance takes the lead, closes the dead run as failed saying its
runner died and its command was left running, runs the next scheduled run once, after the
orphaned command ended (never beside it), and each notification arrives once."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import Server, wait_for
from tests.integration.test_alerts import Receiver, receiver  # noqa: F401  (fixture)

LEASE_S = 5
PERIOD_S = 15  # the job's schedule: a period, counted from its last start
ORPHAN_S = 20  # how long the first run's command goes on after its leader died


def runs_of(server: Server, token: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        server.url + "/api/v1/runs?job=nightly&limit=50",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        items: list[dict[str, Any]] = json.loads(resp.read())["items"]
    return sorted(items, key=lambda run: run["started_at"])


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def marks(path: Path) -> list[tuple[str, str, float]]:
    """The script's lines: (start|end, run id, time)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        what, run_id, at = line.split()
        out.append((what, run_id, float(at)))
    return out


def test_a_leader_killed_mid_run(
    tmp_path: Path,
    pg_url: str,
    receiver: Receiver,  # noqa: F811
) -> None:
    marker, duration = tmp_path / "marks", tmp_path / "duration"
    duration.write_text(str(ORPHAN_S))
    script = tmp_path / "job.sh"
    script.write_text(
        f'echo "start $BACKWATCH_RUN_ID $(date +%s.%N)" >> {marker}\n'
        f'sleep "$(cat {duration})"\n'
        f'echo "end $BACKWATCH_RUN_ID $(date +%s.%N)" >> {marker}\n'
    )
    config = tmp_path / "backwatch.toml"
    config.write_text(
        f"[server]\nleader_lease_seconds = {LEASE_S}\n\n"
        f'[[notify]]\nurls = ["{receiver.url}"]\n\n'
        f'[[jobs]]\nid = "nightly"\ntool = "command"\nrun_by = "server"\n'
        f'schedule = "{PERIOD_S}s"\ntimeout = "5m"\n'
        f'phases = [{{ name = "backup", command = ["sh", "{script}"] }}]\n'
    )
    env = {"BACKWATCH_DATABASE_URL": pg_url, "BACKWATCH_CONFIG": str(config)}
    leader = Server(tmp_path / "a", env).start()  # first up: it leads, and runs the job
    follower = Server(tmp_path / "b", env).start()
    try:
        token = leader.token
        first = wait_for(
            "the leader's first scheduled run is running",
            lambda: (
                [r for r in runs_of(follower, token) if r["status"] == "running"] and marks(marker)
            ),
            PERIOD_S + 30,
        )
        [(_, first_id, _)] = first
        duration.write_text("1")  # the runs after this one are short
        leader.stop(kill=True)  # kill -9: its command goes on, orphaned
        killed = time.monotonic()

        run = wait_for(
            "the dead leader's run is closed",
            lambda: [
                r
                for r in runs_of(follower, token)
                if r["id"] == first_id and r["status"] != "running"
            ],
            30,
        )[0]
        took = time.monotonic() - killed
        assert run["status"] == "failed"
        assert "died during the run" in run["message"]
        assert "left running" in run["message"]
        assert [m[0] for m in marks(marker)] == ["start"]  # closed while it still ran

        # the next scheduled run: once, and only after the orphaned command ended
        second = wait_for(
            "the next scheduled run ends",
            lambda: [
                r
                for r in runs_of(follower, token)
                if r["id"] != first_id and r["status"] not in ("queued", "running")
            ],
            PERIOD_S + ORPHAN_S + 30,
        )
        assert [r["status"] for r in second] == ["success"], second
        lines = marks(marker)
        assert [(what, run_id) for what, run_id, _ in lines] == [
            ("start", first_id),
            ("end", first_id),  # the orphan ran to its end, alone
            ("start", second[0]["id"]),
            ("end", second[0]["id"]),
        ]
        assert lines[2][2] >= lines[1][2]
        # counted from the dead run's start: not at once on taking the lead, not skipped
        gap = epoch(second[0]["started_at"]) - epoch(run["started_at"])
        assert PERIOD_S - 1 <= gap < 2 * PERIOD_S, gap
        runs = runs_of(follower, token)
        assert len(runs) == 2, runs  # no run twice
        # the failure, then its resolution: each said once
        wait_for("the resolution is sent", lambda: len(receiver.messages) >= 2, 30)
        time.sleep(3)  # (a second copy would come within a delivery round or two)
        titles = [m["title"] for m in receiver.messages]
        assert len(titles) == len(set(titles)) == 2, titles
        print(f"dead run closed {took:.1f} s after kill -9 of the leader")
    finally:
        follower.stop()
        leader.stop()
