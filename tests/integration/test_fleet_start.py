"""Several ``serve`` instances on one PostgreSQL database (issue 18, "simultaneous start on
an empty database crashes instances"): real processes started together on an empty schema
all come up, the schema is migrated once, one first token is made, the configured jobs
exist once."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, func, select

from backwatch.store import tables as t
from tests.conftest import Server

INSTANCES = 6


def test_instances_started_together_on_an_empty_database_all_come_up(
    tmp_path: Path, pg_url: str
) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text(
        '[[jobs]]\nid = "nightly"\nschedule = "24h"\n\n[[jobs]]\nid = "hourly"\nschedule = "1h"\n'
    )
    env = {"BACKWATCH_DATABASE_URL": pg_url, "BACKWATCH_CONFIG": str(config)}
    servers = [Server(tmp_path / f"data{i}", env) for i in range(INSTANCES)]
    failures: list[str] = []

    def start(server: Server) -> None:
        try:
            server.start()
        except RuntimeError as exc:
            failures.append(str(exc)[-2000:])

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        for server in servers:
            with urllib.request.urlopen(server.url + "/readyz", timeout=10) as resp:
                assert resp.status == 200
    finally:
        for server in servers:
            server.stop()
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tokens = conn.execute(select(func.count()).select_from(t.tokens)).scalar()
            jobs = conn.execute(select(t.jobs.c.id).order_by(t.jobs.c.id)).scalars().all()
    finally:
        engine.dispose()
    assert tokens == 1
    assert [s for s in servers if (s.data_dir / "token").exists()] != []
    assert jobs == ["hourly", "nightly"]
