"""``GET /api/v1/jobs`` as a paged, filtered collection (issue 18): cursors walk every job
once in each sort, each filter keeps exactly the jobs it names, and the health counted in
SQL equals the health each job shows (domain/health.py) — on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from backwatch.store.job_list import HEALTH_STATES
from tests.conftest import wait_for
from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)

HOUR = 3600


def _report(api: Any, job: str, status: str = "success", ago: float = 60, **extra: Any) -> None:
    body = {"job": job, "status": status, "started_at": time.time() - ago, **extra}
    if status not in ("running", "queued"):
        body["duration_s"] = 5
    response = api.post("/api/v1/runs", json=body, headers=api.auth_headers)
    assert response.status_code == 201, response.text


def _put(api: Any, job: str, **body: Any) -> None:
    response = api.put(f"/api/v1/jobs/{job}", json=body, headers=api.auth_headers)
    assert response.status_code == 200, response.text


def _walk(api: Any, query: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        url = f"/api/v1/jobs?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def _fleet(api: Any) -> None:
    """One job in each health, some on shared hosts and tags."""
    _report(api, "ok-1", host="web1")
    _report(api, "ok-2", host="web1", ago=3 * HOUR)
    _report(api, "failing-1", "failed", host="web2")
    _report(api, "running-1", "running", host="web2", ago=120)
    _report(api, "stuck-1", "running", ago=30 * HOUR)
    _report(api, "unknown-1", "unknown")
    _report(api, "missed-1", ago=5 * HOUR)
    _put(api, "missed-1", schedule="1h", grace="30m", tags=["db"])
    _report(api, "late-1", ago=90 * 60)
    _put(api, "late-1", schedule="1h", grace="2h", tags=["db", "nas"])
    _put(api, "new-1", description="never ran, no schedule", tags=["nas"])
    _report(api, "paused-1", "failed")
    assert api.post("/api/v1/jobs/paused-1/pause", headers=api.auth_headers).status_code == 200


EXPECTED = {
    "ok-1": "ok", "ok-2": "ok", "failing-1": "failing", "running-1": "running",
    "stuck-1": "stuck", "unknown-1": "unknown", "missed-1": "missed", "late-1": "late",
    "new-1": "new", "paused-1": "paused",
}  # fmt: skip


def _learned(api: Any) -> dict[str, str]:
    """Three unscheduled jobs due at their learned interval (an hour; grace an hour by
    default), as ``_fleet`` has them: answers their expected health."""
    for job, last in (
        ("learned-ok", 10 * 60),
        ("learned-late", 75 * 60),
        ("learned-missed", 5 * HOUR),
    ):
        for k in reversed(range(6)):
            _report(api, job, ago=last + k * HOUR)
    # the rule round learns the interval after the commit
    for job in ("learned-ok", "learned-late", "learned-missed"):
        wait_for(
            f"{job} to learn its interval",
            lambda job=job: api.get(f"/api/v1/jobs/{job}").json()["learned_interval_s"],
            30,
        )
    return {"learned-ok": "ok", "learned-late": "late", "learned-missed": "missed"}


def test_counts_and_health_filters_equal_each_jobs_health(api):
    _fleet(api)
    expected = EXPECTED | _learned(api)
    everything = api.get("/api/v1/jobs?limit=1000&counts=true").json()
    shown = {j["id"]: j["health"] for j in everything["items"]}
    assert shown == expected
    tally: dict[str, int] = {}
    for health in shown.values():
        tally[health] = tally.get(health, 0) + 1
    assert {k: v for k, v in everything["counts"].items() if v} == tally
    assert set(everything["counts"]) >= {"failing", "missed", "stuck", "late", "ok"}
    for health in set(expected.values()):
        found = api.get(f"/api/v1/jobs?health={health}").json()["items"]
        assert sorted(j["id"] for j in found) == sorted(
            job for job, h in expected.items() if h == health
        ), health
    several = api.get("/api/v1/jobs?health=failing,missed&health=stuck").json()["items"]
    assert [j["id"] for j in several] == ["failing-1", "learned-missed", "missed-1", "stuck-1"]


def test_a_schedule_change_moves_the_job_between_health_filters(api):
    _report(api, "db", ago=5 * HOUR)
    _put(api, "db", schedule="1h", grace="30m")
    assert [j["id"] for j in api.get("/api/v1/jobs?health=missed").json()["items"]] == ["db"]
    _put(api, "db", schedule="24h")
    assert api.get("/api/v1/jobs?health=missed").json()["items"] == []
    assert [j["health"] for j in api.get("/api/v1/jobs?health=ok").json()["items"]] == ["ok"]
    _report(api, "db", ago=25 * HOUR)  # an older run does not move the latest start
    assert api.get("/api/v1/jobs?counts=true").json()["counts"]["ok"] == 1


def test_filters_by_host_tag_and_id_prefix(api):
    _fleet(api)

    def ids(query: str) -> list[str]:
        return [j["id"] for j in api.get(f"/api/v1/jobs?{query}").json()["items"]]

    assert ids("host=web1") == ["ok-1", "ok-2"]
    assert ids("host=web2&health=running") == ["running-1"]
    assert ids("tag=nas") == ["late-1", "new-1"]
    assert ids("tag=db&health=missed") == ["missed-1"]
    assert ids("q=ok-") == ["ok-1", "ok-2"]
    assert ids("q=s") == ["stuck-1"]
    assert ids("q=zzz") == []
    counts = api.get("/api/v1/jobs?tag=nas&counts=true").json()["counts"]
    assert {k: v for k, v in counts.items() if v} == {"late": 1, "new": 1}


@pytest.mark.parametrize("sort", ["id", "last_run", "health"])
def test_cursor_walks_every_job_once_in_each_sort(api, sort):
    _fleet(api)
    expected = EXPECTED | _learned(api)
    for i in range(15):
        _report(api, f"bulk-{i:02d}", ago=600 + (i % 4) * 60)  # equal start times share keys
    walked = _walk(api, f"sort={sort}", limit=4)
    ids = [j["id"] for j in walked]
    assert len(ids) == len(set(ids)) == len(expected) + 15
    whole = [j["id"] for j in api.get(f"/api/v1/jobs?sort={sort}&limit=1000").json()["items"]]
    assert ids == whole
    if sort == "id":
        assert ids == sorted(ids)
    if sort == "health":  # problems first
        healths = [j["health"] for j in walked]
        assert healths[:5] == ["failing", "missed", "missed", "stuck", "unknown"]
        assert healths == sorted(healths, key=HEALTH_STATES.index)  # ok ones in the middle
        assert "running" in healths and "new" in healths  # either side of them
        assert walked[-1]["health"] == "paused"
    if sort == "last_run":
        starts = [j["last_run"]["started_at"] for j in walked if j["last_run"]]
        assert starts == sorted(starts, reverse=True)
        assert walked[-1]["id"] == "new-1"  # never ran: last


def test_default_page_is_100_and_says_where_to_go_on(api):
    now = time.time()
    jobs = [
        {"job": f"j{i:03d}", "status": "success", "started_at": now - 60, "duration_s": 1}
        for i in range(120)
    ]
    response = api.post("/api/v1/runs", json=jobs, headers=api.auth_headers)
    assert response.status_code in (200, 201), response.text
    first = api.get("/api/v1/jobs").json()
    assert len(first["items"]) == 100 and first["next_cursor"]
    rest = api.get(f"/api/v1/jobs?cursor={first['next_cursor']}").json()
    assert [j["id"] for j in rest["items"]] == [f"j{i:03d}" for i in range(100, 120)]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("health=sideways", "health"),
        ("sort=colour", "sort"),
        ("cursor=not-a-cursor", "cursor"),
        ("sort=health&cursor=WyJpZCIsbnVsbCwiYSJd", "cursor"),  # an id cursor
    ],
)
def test_bad_parameters_are_refused_by_name(api, query, field):
    response = api.get(f"/api/v1/jobs?{query}")
    assert response.status_code in (400, 422), response.text
    assert field in response.text


def test_summary_pages_its_per_job_figures_and_counts_health_like_the_list(api):
    _fleet(api)
    walked: dict[str, Any] = {}
    cursor = None
    for _ in range(20):
        url = "/api/v1/summary?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).json()
        assert len(page["jobs"]) <= 3
        walked.update(page["jobs"])
        cursor = page["jobs_next_cursor"]
        if cursor is None:
            break
    whole = api.get("/api/v1/summary").json()
    assert walked == whole["jobs"] and whole["jobs_next_cursor"] is None
    assert whole["total"] == sum(j["total"] for j in whole["jobs"].values())
    counts = api.get("/api/v1/jobs?counts=true").json()["counts"]
    assert whole["health"] == {k: v for k, v in sorted(counts.items()) if v}
    assert api.get("/api/v1/summary?limit=0").status_code in (400, 422)


def _alert(engine: Any, job: str, rule: str, severity: str = "critical", state: str = "open"):
    from backwatch.store import tables as t

    at = time.time()
    row = {
        "fingerprint": f"{rule}:{job}", "rule": rule, "job": job, "severity": severity,
        "state": state, "message": f"{rule} on {job}", "opened_at": at, "updated_at": at,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(t.alerts.insert().values(**row))


def test_the_failing_filter_keeps_exactly_the_jobs_an_alert_turns_failing(api, settings):
    """A critical alert of a rule health does not judge itself turns an ok, late, unknown
    or new job failing while it is open or acknowledged; not once resolved, not as a
    warning, not of a rule health judges (``failed``), and never a paused job. The filter
    reads those alerts apart from the jobs (store/job_list.py ``_hinted``): each page, sort
    and count must still agree with each job's own health, and list a job failing twice
    over (its run and an alert) once."""
    from sqlalchemy import create_engine

    _report(api, "late-open", ago=90 * 60)
    _put(api, "late-open", schedule="1h", grace="2h")
    for job in ("ok-open", "ok-acked", "ok-resolved", "ok-warning", "ok-failed-rule"):
        _report(api, job)
    _report(api, "unknown-open", "unknown")
    _put(api, "new-open", description="never ran")
    _report(api, "failed-and-open", "failed")
    _report(api, "paused-open")
    assert api.post("/api/v1/jobs/paused-open/pause", headers=api.auth_headers).status_code == 200
    # the server judges these reports first: its rules would resolve the alerts written
    # below behind its back (no verification failed), and a check raced them in CI
    api.portal.call(api.app.state.alert_tasks.tick)
    engine = create_engine(settings.db_url)
    try:
        for job in ("late-open", "ok-open", "unknown-open", "new-open", "failed-and-open"):
            _alert(engine, job, "verify_failed")
        _alert(engine, "paused-open", "verify_failed")
        _alert(engine, "ok-acked", "empty", state="acknowledged")
        _alert(engine, "ok-resolved", "empty", state="resolved")
        _alert(engine, "ok-warning", "empty", severity="warning")
        _alert(engine, "ok-failed-rule", "failed")  # health judges the latest run itself
    finally:
        engine.dispose()
    failing = ["failed-and-open", "late-open", "new-open", "ok-acked", "ok-open", "unknown-open"]
    expected = {job: "failing" for job in failing} | {
        "ok-resolved": "ok", "ok-warning": "ok", "ok-failed-rule": "ok", "paused-open": "paused",
    }  # fmt: skip
    shown = {job: api.get(f"/api/v1/jobs/{job}").json()["health"] for job in expected}
    assert shown == expected
    # limits this test alone asks for: answers built now, not reused from before the alerts
    for sort in ("id", "last_run", "health"):
        walked = [j["id"] for j in _walk(api, f"health=failing&sort={sort}", limit=4)]
        assert sorted(walked) == failing and len(walked) == len(set(walked)), sort
    several = api.get("/api/v1/jobs?health=failing,paused&limit=999").json()["items"]
    assert [j["id"] for j in several] == sorted([*failing, "paused-open"])
    ok = api.get("/api/v1/jobs?health=ok&limit=998").json()["items"]
    assert [j["id"] for j in ok] == ["ok-failed-rule", "ok-resolved", "ok-warning"]
    counts = api.get("/api/v1/jobs?counts=true&limit=997").json()["counts"]
    assert {k: v for k, v in counts.items() if v} == {"failing": 6, "ok": 3, "paused": 1}
