"""A fleet of 100,000 jobs (issue 18): the overview in a real browser (its problem counts,
a filter by health and by tag, the next page, a job opened from the list), and the
terminal dashboard, on one real server.

The database is seeded in bulk through backwatch's own tables (a report per job through
the API would take minutes): each job with one run and the snapshot of it that the write
path keeps on the job row (``last_*``, ``runs_total``, ``median_duration_s``, the due time
of its ``24h`` schedule), and the day's rollup. 2,500 jobs failed their last run, 1,000
last ran three days ago (missed), the rest ran two hours ago and are ok.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKWATCH, Server
from tests.e2e.test_browser import api, browser, page, shot  # noqa: F401  (fixtures)

JOBS = 100_000
FAILING = range(7, JOBS, 40)  # 2,500
MISSED = range(11, JOBS, 100)  # 1,000 (none of them in FAILING: 7 and 11 differ mod 20)
SITES = ("ams", "fra", "lon", "nyc")
KINDS = ("db", "files", "mail")
DB_JOBS = len(range(0, JOBS, 3))  # 33,334 jobs tagged db
LOAD_MS = 30_000  # a page of a 100,000-job fleet on a busy 2-core test machine


def seed_fleet(db: Path, now: float) -> None:
    """``JOBS`` jobs with one run each, written as the write path keeps them."""
    from backwatch.services.due import due_for
    from backwatch.store.connect import make_engine
    from backwatch.store.migrate import migrate

    engine = make_engine(f"sqlite:///{db}", writer=True)
    migrate(engine)
    engine.dispose()
    failing, missed = set(FAILING), set(MISSED)
    jobs, runs, rollups = [], [], []
    for i in range(JOBS):
        site, kind = SITES[i // 3 % len(SITES)], KINDS[i % 3]
        host = f"{site}-{i // 3:05d}"
        job = f"{host}-{kind}"
        status = "failed" if i in failing else "success"
        started = now - (3 * 86400 if i in missed else 7200) - i % 600
        duration = 60.0 + i % 900
        finished = started + duration
        size = None if status == "failed" else 10**9 + i
        ok = status == "success"
        jobs.append((
            job, "", host, "restic", "24h", "UTC", 3600.0, json.dumps([site, kind]), 0,
            f"pk{i:08d}", "auto", now - 30 * 86400, now, f"r-{job}", started, finished,
            status, duration, size, finished if ok else None, duration if ok else None, 1,
            due_for("24h", "UTC", started), started, "24h|UTC",
        ))  # fmt: skip
        runs.append((
            f"r-{job}", job, host, status, started, finished, duration,
            1 if status == "failed" else 0, size, "restic", "api", "api", finished, "backup",
        ))  # fmt: skip
        rollups.append((
            job, int(started // 86400), 1, int(ok), 0, int(not ok), 0, duration, 1,
            float(size or 0), int(size is not None),
        ))  # fmt: skip
    for rows in (jobs, runs, rollups):  # in key order: each index is appended to
        rows.sort(key=lambda row: row[0])
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = OFF")  # a new file: the server turns WAL back on
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, description, host, tool, schedule, timezone, grace_s, tags,"
            " paused, ping_key, origin, created_at, updated_at, last_run_id, last_started_at,"
            " last_finished_at, last_status, last_duration_s, last_size_bytes,"
            " last_success_at, median_duration_s, runs_total, due_at, due_from, due_key)"
            f" VALUES ({', '.join('?' * 25)})",
            jobs,
        )
        conn.executemany(
            "INSERT INTO runs (id, job, host, status, started_at, finished_at, duration_s,"
            ' exit_code, size_bytes, tool, source, "trigger", updated_at, kind)'
            f" VALUES ({', '.join('?' * 14)})",
            runs,
        )
        conn.executemany(
            "INSERT INTO daily_rollups (job, day, runs, success, warning, failed, other,"
            " duration_sum, duration_count, size_sum, size_count)"
            f" VALUES ({', '.join('?' * 11)})",
            rollups,
        )
    conn.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fleet100k") / "data"
    data.mkdir(mode=0o700)
    seed_fleet(data / "backwatch.db", time.time())
    srv = Server(data).start()
    yield srv
    srv.stop()


def _number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def _jobs(pg) -> list[tuple[str, str]]:
    return pg.locator('[data-live-id="jobs"] li.job').evaluate_all(
        "els => els.map(e => [e.dataset.job, e.dataset.health])"
    )


def test_overview_filters_pages_and_opens_a_job_at_100000_jobs(page, fleet: Server) -> None:  # noqa: F811
    page.set_default_timeout(LOAD_MS)
    page.goto(fleet.url + "/", timeout=LOAD_MS)
    counts = page.locator('[data-live-id="head-counts"]')
    assert _number(counts.inner_text().split("job")[0]) == JOBS
    assert _number(counts.locator("a.h-failing").inner_text()) == len(FAILING)
    assert _number(counts.locator("a.h-missed").inner_text()) == len(MISSED)
    attention = page.locator("#attention-title")
    assert _number(attention.locator("a.h-failing").inner_text()) == len(FAILING)
    healths = page.locator('[data-live-id="attention"] li.job').evaluate_all(
        "els => els.map(e => e.dataset.health)"
    )
    assert healths and set(healths) <= {"failing", "missed"}
    shot(page, "overview-fleet-100k")

    # by health: the missed ones only, and how many match
    page.get_by_label("Health").select_option("missed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"health=missed"))
    listed = _jobs(page)
    assert listed and {h for _, h in listed} == {"missed"}
    assert _number(page.locator("#jobs-title .muted").inner_text()) == len(MISSED)

    # by tag, then the next page: other jobs, still tagged db
    page.goto(fleet.url + "/")
    page.get_by_label("Tag").fill("db")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"tag=db"))
    assert _number(page.locator("#jobs-title .muted").inner_text()) == DB_JOBS
    first = [j for j, _ in _jobs(page)]
    assert first and all(j.endswith("-db") for j in first)
    page.get_by_role("link", name=re.compile("Next page")).click()
    page.wait_for_url(re.compile(r"cursor="))
    second = [j for j, _ in _jobs(page)]
    assert second and all(j.endswith("-db") for j in second)
    assert not set(first) & set(second)

    # a job opened from the list
    job = second[0]
    page.locator(f'li.job[data-job="{job}"] a.job-name').first.click()
    page.wait_for_url(fleet.url + f"/jobs/{job}")
    assert page.locator("h1", has_text=job).count() == 1


def test_terminal_dashboard_at_100000_jobs(fleet: Server) -> None:
    """``backwatch dashboard --once`` against the server: the counts of the whole fleet and
    a bounded frame (the jobs that need attention first), not a line per job."""
    out = subprocess.run(
        [*BACKWATCH, "dashboard", "--once", "--url", fleet.url, "--token", fleet.token],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    head = " ".join(out.split("Needs attention")[0].split())
    assert f"{JOBS} job(s)" in head.replace(",", "")
    assert f"{len(FAILING)} failing" in head.replace(",", "")
    assert f"{len(MISSED)} missed" in head.replace(",", "")
    assert len(out.splitlines()) < 200


def test_api_pages_and_counts_at_100000_jobs(fleet: Server) -> None:
    """``GET /api/v1/jobs``: the counts of the whole fleet, a filtered page with all the
    missed jobs in it, and a tag's pages walked by cursor without a job twice."""
    counts = api(fleet, "GET", "/api/v1/jobs?limit=1&counts=true")["counts"]
    assert sum(counts.values()) == JOBS
    assert (counts["failing"], counts["missed"]) == (len(FAILING), len(MISSED))
    missed = api(fleet, "GET", "/api/v1/jobs?health=missed&limit=1000")
    assert len(missed["items"]) == len(MISSED) and missed["next_cursor"] is None
    seen: set[str] = set()
    cursor = ""
    for _ in range(3):
        answer = api(fleet, "GET", f"/api/v1/jobs?tag=db&limit=1000{cursor}")
        ids = {job["id"] for job in answer["items"]}
        assert len(ids) == 1000 and all(i.endswith("-db") for i in ids) and not ids & seen
        seen |= ids
        cursor = f"&cursor={answer['next_cursor']}"


def test_cli_list_answers_one_page_at_100000_jobs(fleet: Server) -> None:
    """``backwatch list --json`` against the server: one page of 100 jobs (it used to read
    all 100,000: 78 s and 98 MB), and the next page's command on stderr; then the
    missed jobs, filtered in the database."""
    target = ["--url", fleet.url, "--token", fleet.token]
    listed = subprocess.run(
        [*BACKWATCH, "list", "--json", *target],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    jobs = json.loads(listed.stdout)
    assert len(jobs) == 100 and len({job["id"] for job in jobs}) == 100
    assert "backwatch list --json --url" in listed.stderr and "--cursor" in listed.stderr
    missed = subprocess.run(
        [*BACKWATCH, "list", "--health", "missed", "--limit", "1000", "--json", *target],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert {job["health"] for job in json.loads(missed.stdout)} == {"missed"}
    assert len(json.loads(missed.stdout)) == len(MISSED)
