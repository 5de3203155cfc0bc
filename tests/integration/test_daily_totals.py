"""The fleet's daily totals (issue 18) are the daily rollups summed over every job, kept in
the same transactions: after reports on several days, a run deleted, a job deleted and an
upgrade of a database that already had rollups, every day's totals equal its rollups and
the summary's totals equal the sum of its per-job figures (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from backwatch.store import tables as t
from backwatch.store.migrate import _config

DAY = 86400.0
FIGURES = ("runs", "success", "warning", "failed", "other", "duration_sum", "duration_count",
           "size_sum", "size_count")  # fmt: skip


def _post(api, body) -> dict:
    resp = api.post("/api/v1/runs", json=body, headers=api.auth_headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _per_day(conn, table, *group) -> dict[int, tuple]:
    sums = [func.sum(table.c[name]) for name in FIGURES]
    rows = conn.execute(select(table.c.day, *sums).group_by(table.c.day, *group)).all()
    found: dict[int, list[float]] = {}
    for day, *values in rows:
        into = found.setdefault(day, [0.0] * len(FIGURES))
        for i, value in enumerate(values):
            into[i] += value
    return {day: tuple(round(v, 6) for v in values) for day, values in found.items()}


def _agree(api) -> dict:
    engine = api.app.state.hub.read_engine
    with engine.connect() as conn:
        rollups = _per_day(conn, t.daily_rollups)
        totals = {
            day: values
            for day, values in _per_day(conn, t.daily_totals).items()
            if any(values)  # a day whose runs were all taken away may stay as zeros
        }
    assert totals == rollups
    summary = api.get("/api/v1/summary?days=30", headers=api.auth_headers).json()
    per_job = summary["jobs"].values()
    assert summary["total"] == sum(j["total"] for j in per_job)
    assert summary["failed"] == sum(j["failed"] for j in per_job)
    return summary


def test_totals_follow_reports_deletions_and_a_deleted_job(api) -> None:
    now = time.time()
    made = []
    for job in ("db", "nas", "web"):
        for days in range(5):
            made.append(
                _post(
                    api,
                    {
                        "job": job,
                        "status": "failed" if days == 2 else "success",
                        "started_at": now - days * DAY - 60,
                        "duration_s": 10 + days,
                        "size_bytes": 1000 * (days + 1),
                    },
                )
            )
    summary = _agree(api)
    assert summary["total"] == 15 and summary["failed"] == 3
    assert api.delete(f"/api/v1/runs/{made[0]['id']}", headers=api.auth_headers).status_code == 200
    assert _agree(api)["total"] == 14
    key = {"X-Api-Key": api.token}
    (web,) = api.get("/api/v3/checks/?slug=web", headers=key).json()["checks"]
    gone = api.delete(f"/api/v3/checks/{web['uuid']}", headers=key)
    assert gone.status_code == 200, gone.text
    summary = _agree(api)
    assert summary["total"] == 9 and summary["failed"] == 2


def test_an_upgrade_adds_up_the_rollups_already_stored(api) -> None:
    now = time.time()
    for job in ("db", "nas"):
        for days in range(3):
            _post(api, {"job": job, "status": "success", "started_at": now - days * DAY})
    from alembic import command

    engine = api.app.state.hub.write_engine
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0013")
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT SUM(runs) FROM daily_totals")).scalar() == 6
    assert _agree(api)["total"] == 6
