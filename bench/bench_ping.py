"""Healthchecks-style pings to a job with a long history, against a new job (issue 18).

A ping's finish pairs with the job's open start. That lookup must cost the same whatever
the job's history: a year of 5-minute pings is 105,000 runs. Starts ``backwatch serve``
on SQLite, gives one job ``--runs`` finished ping runs (bulk SQL, as they would be after a
year), and times start+success ping pairs over one keep-alive connection, to that job and
to a new one, interleaved in rounds so that load on the machine hits both alike.
Budget: the long-history rate ≥ 0.8× the new job's.

``--healthchecks DIR`` (a server built by ``bench/healthchecks_setup.sh``) adds the second
half of the budget, the long-history rate ≥ 2× Healthchecks': Healthchecks under uWSGI as
its Docker image runs it, on a copy of DIR's SQLite database with a check of ``--runs``
pings and a new check, pinged with the same client in the same rounds.

    .venv/bin/python bench/bench_ping.py [--quick] [--runs 100000] [--pairs 300]
        [--healthchecks /opt/healthchecks]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, free_port, median, percentile, result, scratch_dir, stop, wait_http

BUDGET_RATIO = 0.8
HC_BUDGET_RATIO = 2.0
ROUNDS = 5

# docker/uwsgi.ini of the Healthchecks revision healthchecks_setup.sh pins: 4 processes of
# 1 thread, master, thunder-lock, `sendalerts` beside them. Two changes: http11-socket for
# http-socket, because http-socket closes the connection after every answer (without
# saying so) and both servers must be timed over one keep-alive connection; and no
# `migrate` hook or `sendreports` daemon (the setup migrated; reports are monthly email).
HC_UWSGI_INI = """[uwsgi]
strict
master
die-on-term
http11-socket = 127.0.0.1:{port}
harakiri = 10
buffer-size = 32768
post-buffering = 16192
processes = 4
auto-procname
enable-threads
threads = 1
chdir = {hc_dir}
module = hc.wsgi:application
thunder-lock
disable-write-exception
max-fd = 10000
check-static = static-collected/
attach-daemon = {python} manage.py sendalerts --skip-checks
"""

# A user, a project with a ping key, a check with a long history and a new one. The
# owner's ping log limit is raised above what the run will hold: Healthchecks prunes a
# check to its last `ping_log_limit` pings (100 by default) every 100th ping.
HC_MAKE_CHECKS = """
import os
from django.contrib.auth.models import User
from hc.accounts.models import Profile, Project
from hc.api.models import Check
key, limit = os.environ["BENCH_PING_KEY"], int(os.environ["BENCH_PING_LOG_LIMIT"])
user = User.objects.create_user("bench", "bench@example.org", key)
profile = Profile.objects.for_user(user)
profile.ping_log_limit = limit
profile.save()
project = Project.objects.create(owner=user, name="bench", badge_key=key, ping_key=key)
for slug in ("every5min", "fresh"):
    Check.objects.create(project=project, name=slug, slug=slug)
"""


def ping_path(server: Server, job: str) -> str:
    key = server.get("/api/v1/ping-key")["ping_key"]
    return f"/ping/{key}/{job}"


def seed_history(db: Path, job: str, runs: int) -> None:
    """``runs`` finished ping runs of ``job``, five minutes apart, ending an hour ago."""
    now = time.time() - 3600
    rows = (
        (f"{job}-{i}", job, "success", now - 300 * (runs - i), now - 300 * (runs - i) + 20,
         20.0, "ping", "schedule", now, "backup")
        for i in range(runs)
    )  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (id, job, status, started_at, finished_at, duration_s, source, "
            '"trigger", updated_at, kind) VALUES (?,?,?,?,?,?,?,?,?,?)',
            rows,
        )
        conn.execute("UPDATE jobs SET runs_total = runs_total + ? WHERE id = ?", (runs, job))


def django_time(t: float) -> str:
    """How Django keeps a datetime in SQLite (UTC, no offset)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_healthchecks(hc_dir: Path, db: Path, runs: int, pings_to_come: int) -> str:
    """A copy of ``hc_dir``'s database with check ``every5min`` holding ``runs`` success
    pings five minutes apart, ending an hour ago, as its ping view would have written them
    (``n`` counting up, ``n_pings`` the last ``n``), and check ``fresh`` with none.
    Returns the project's ping key."""
    db.write_bytes((hc_dir / "hc.sqlite").read_bytes())
    key = secrets.token_urlsafe(16).lower().replace("_", "-")
    subprocess.run(
        [str(hc_dir / ".venv/bin/python"), "manage.py", "shell", "-v", "0", "-c", HC_MAKE_CHECKS],
        cwd=hc_dir, check=True,
        env=hc_env(db, "http://127.0.0.1:8000") | {
            "BENCH_PING_KEY": key, "BENCH_PING_LOG_LIMIT": str(runs + pings_to_come + 1000)},
    )  # fmt: skip
    now = time.time() - 3600
    with sqlite3.connect(db) as conn:
        (check_id,) = conn.execute("SELECT id FROM api_check WHERE slug = 'every5min'").fetchone()
        rows = (
            (i + 1, check_id, django_time(now - 300 * (runs - 1 - i)), "http", "127.0.0.1",
             "GET", "bench", b"")
            for i in range(runs)
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO api_ping (n, owner_id, created, scheme, remote_addr, method, ua, "
            "body_raw) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.execute(
            "UPDATE api_check SET n_pings = ?, last_ping = ?, status = 'up' WHERE id = ?",
            (runs, django_time(now), check_id),
        )
    return key


def hc_env(db: Path, site_root: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DB", "UWSGI"))}
    return env | {"DB": "sqlite", "DB_NAME": str(db), "DEBUG": "False", "SITE_ROOT": site_root}


@contextlib.contextmanager
def healthchecks(hc_dir: Path, db: Path) -> Iterator[int]:
    """Healthchecks under uWSGI (``HC_UWSGI_INI``) on ``db``; yields its port."""
    port = free_port()
    ini = db.with_name("uwsgi.ini")
    python = hc_dir / ".venv/bin/python"
    ini.write_text(HC_UWSGI_INI.format(port=port, hc_dir=hc_dir, python=python))
    log = db.with_name("uwsgi.log")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(hc_dir / ".venv/bin/uwsgi"), "--ini", str(ini)], cwd=hc_dir,
            env=hc_env(db, f"http://127.0.0.1:{port}"), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/api/v3/status/", timeout=60, proc=proc)
            yield port
        except BaseException:
            sys.stderr.write(log.read_text()[-4000:])
            raise
        finally:
            stop(proc)


def pairs_per_s(
    conn: http.client.HTTPConnection, path: str, pairs: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    began = time.perf_counter()
    for _ in range(pairs):
        for suffix in ("/start", ""):
            t0 = time.perf_counter()
            conn.request("GET", path + suffix)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"ping {path + suffix}: HTTP {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)
    return pairs * 2 / (time.perf_counter() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 runs, 100 pairs")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=300, help="start+finish pairs per round")
    parser.add_argument(
        "--healthchecks", type=Path, metavar="DIR",
        help="also time Healthchecks built in DIR by bench/healthchecks_setup.sh",
    )  # fmt: skip
    args = parser.parse_args()
    runs, pairs = (10_000, 100) if args.quick else (args.runs, args.pairs)
    hc_dir = args.healthchecks.resolve() if args.healthchecks else None

    with scratch_dir("ping") as tmp:
        data = tmp / "data"
        with Server(data) as server:  # creates the schema, the token and the ping key
            old, new = ping_path(server, "every5min"), ping_path(server, "fresh")
            for path in (old, new):  # ?create=1: the slug URL makes the job
                with urllib.request.urlopen(server.url + path + "?create=1", timeout=30):
                    pass
        seed_history(data / "backwatch.db", "every5min", runs)
        rates: dict[str, list[float]] = {}
        latencies: dict[str, list[float]] = {}
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(Server(data))
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            # The same URLs on both: /ping/<project ping key>/<slug>[/start].
            targets = [("history", conn, old), ("new", conn, new)]
            if hc_dir is not None:
                hc_db = tmp / "hc" / "hc.sqlite"
                hc_db.parent.mkdir()
                key = seed_healthchecks(hc_dir, hc_db, runs, 2 * (pairs + 20))
                hc_port = stack.enter_context(healthchecks(hc_dir, hc_db))
                hc_conn = http.client.HTTPConnection("127.0.0.1", hc_port, timeout=60)
                targets += [
                    ("hc_history", hc_conn, f"/ping/{key}/every5min"),
                    ("hc_new", hc_conn, f"/ping/{key}/fresh"),
                ]
            for name, c, path in targets:
                rates[name], latencies[name] = [], []
                if name.endswith("new"):
                    pairs_per_s(c, path, 20)  # warm up
            for _ in range(ROUNDS):
                for name, c, path in targets:
                    if hc_dir is not None:
                        # A new connection for each turn, the same for all four: uWSGI and
                        # uvicorn drop a keep-alive connection idle for 4-5 s, and each
                        # waits through three other turns.
                        c.close()
                    rate, lat = pairs_per_s(c, path, pairs // ROUNDS)
                    rates[name].append(rate)
                    latencies[name].extend(lat)
            for _, c, _ in targets:
                c.close()
        with sqlite3.connect(data / "backwatch.db") as db:
            (total,) = db.execute("SELECT count(*) FROM runs WHERE job = 'every5min'").fetchone()
        if hc_dir is not None:
            with sqlite3.connect(hc_db) as db:
                (hc_total,) = db.execute(
                    "SELECT count(*) FROM api_ping JOIN api_check ON owner_id = api_check.id "
                    "WHERE slug = 'every5min'"
                ).fetchone()
    rate = {name: median(values) for name, values in rates.items()}
    p95 = {name: round(percentile(values, 95), 2) for name, values in latencies.items()}
    ratio = rate["history"] / rate["new"]
    summary = {"runs_in_job": total, "history_per_s": round(rate["history"], 1),
               "new_per_s": round(rate["new"], 1), "ratio": round(ratio, 3)}  # fmt: skip
    figures = dict(
        runs_in_job=total,
        history_pings_per_s=round(rate["history"], 1),
        new_job_pings_per_s=round(rate["new"], 1),
        ratio=round(ratio, 3),
        history_p95_ms=p95["history"],
        new_p95_ms=p95["new"],
        budget_ratio=BUDGET_RATIO,
        ok=ratio >= BUDGET_RATIO,
    )
    if hc_dir is not None:
        hc_ratio = rate["history"] / rate["hc_history"]
        summary |= {"hc_pings_in_check": hc_total, "hc_ratio": round(hc_ratio, 3),
                    "hc_history_per_s": round(rate["hc_history"], 1),
                    "hc_new_per_s": round(rate["hc_new"], 1)}  # fmt: skip
        figures |= dict(
            hc_pings_in_check=hc_total,
            hc_history_pings_per_s=round(rate["hc_history"], 1),
            hc_new_check_pings_per_s=round(rate["hc_new"], 1),
            hc_history_p95_ms=p95["hc_history"],
            hc_new_p95_ms=p95["hc_new"],
            hc_ratio=round(hc_ratio, 3),
            hc_new_ratio=round(rate["history"] / rate["hc_new"], 3),
            hc_budget_ratio=HC_BUDGET_RATIO,
            hc_ok=hc_ratio >= HC_BUDGET_RATIO,
            hc_server="uWSGI, 4 processes x 1 thread (Healthchecks' docker/uwsgi.ini), SQLite",
        )
    print(json.dumps(summary))
    result("ping", **figures)


if __name__ == "__main__":
    main()
