"""Ingest into one PostgreSQL through one ``serve`` instance and through two (issue 18).

Two instances on one database are how a fleet outgrows one server (docs/scaling.md). This
measures what the second instance adds on this machine: wrk with ingest.lua (native reports,
unique ids, 100 jobs, as bench_ingest.py) at 16 connections against instance A alone, then
at 8 + 8 connections against A and B at the same time, alternating ``--rounds`` times; the
rate is the sum of what the instances acknowledged. Every acknowledged report is counted in
the database afterwards. The core count is recorded with the figures: on a machine with
fewer cores than processes (wrk, two servers, PostgreSQL) a second instance cannot add much.

    .venv/bin/python bench/bench_pg_instances.py [--url postgresql+psycopg://…/postgres]
                                                 [--seconds 10] [--rounds 2]

``--url`` names a server where the bench may create and drop the database
``backwatch_bench_instances`` (default: BACKWATCH_TEST_PG_URL's server, as the tests use).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import run_wrk
from common import BENCH, Server, median, result, scratch_dir
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DB_NAME = "backwatch_bench_instances"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _fresh_database(server_url: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
    admin.dispose()
    return make_url(server_url).set(database=DB_NAME).render_as_string(hide_password=False)


def _load(servers: list[Server], token: str, conns: int, seconds: int, tag: str) -> dict:
    """wrk against each server at once, ``conns`` connections each; the summed rate."""
    out: list[dict[str, Any]] = [{} for _ in servers]

    def one(i: int, server: Server) -> None:
        env = {"BW_TOKEN": token, "BW_PREFIX": f"{tag}-{i}-{time.time_ns()}",
               "BW_BASE": str(int(time.time()) - 7 * 86400)}  # fmt: skip
        out[i] = run_wrk(server.url, BENCH / "ingest.lua", conns, seconds, env)

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(servers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {
        "instances": len(servers),
        "connections_each": conns,
        "rps": round(sum(o["rps"] for o in out), 1),
        "ok": sum(o["ok"] for o in out),
        "non2xx": sum(o["non2xx"] for o in out),
        "p99_ms": max(o["p99_ms"] for o in out),
        "each": out,
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['instances']} instance(s): {row['rps']:>8.1f} reports/s "
        f"p99 {row['p99_ms']} ms non-2xx {row['non2xx']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BACKWATCH_TEST_PG_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    url = _fresh_database(args.url)
    load = [os.getloadavg()[0]]
    with scratch_dir("pg-instances") as tmp:
        config = tmp / "backwatch.toml"
        config.write_text(f'database_url = "{url}"\n')
        extra = ["--config", str(config)]
        with Server(tmp / "a", extra=extra) as a:
            token = a.token  # the first instance made it; the second finds it in the database
            with Server(tmp / "b", extra=extra) as b:
                time.sleep(3)
                rows = []
                for r in range(args.rounds):
                    rows.append(_load([a], token, 16, args.seconds, f"one{r}"))
                    rows.append(_load([a, b], token, 8, args.seconds, f"two{r}"))
                    for row in rows[-2:]:
                        print(_line(row), flush=True)
    load.append(os.getloadavg()[0])
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
    engine.dispose()
    acked = sum(row["ok"] for row in rows)
    one = median([row["rps"] for row in rows if row["instances"] == 1])
    two = median([row["rps"] for row in rows if row["instances"] == 2])
    print(f"two instances / one: {two / one:.2f}x on {os.cpu_count()} cores; {acked} "
          f"acknowledged, {stored} stored; load {load[0]:.2f} -> {load[1]:.2f}")  # fmt: skip
    result(
        "pg_instances",
        cores=os.cpu_count(),
        one_instance_rps=one,
        two_instances_rps=two,
        ratio=round(two / one, 2),
        acknowledged=acked,
        stored=stored,
        durable=stored >= acked,
        rounds=[{k: v for k, v in row.items() if k != "each"} for row in rows],
        load=[round(x, 2) for x in load],
    )


if __name__ == "__main__":
    main()
