"""The overview of a fleet in a real browser (issue 18): the jobs that need attention
first, the others a page at a time, a filter, and a job opened from the list."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Server
from tests.e2e.test_browser import WAIT_MS, api, browser, page, shot  # noqa: F401  (fixtures)

JOBS = 150


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """150 jobs in one batch: three failing, one that missed its schedule, the rest ok."""
    srv = Server(tmp_path_factory.mktemp("fleet") / "data").start()
    now = time.time()
    reports = [
        {
            "job": f"fleet-{i:03d}",
            "host": f"host-{i // 3:02d}",
            "status": "failed" if i in (7, 70, 140) else "success",
            "started_at": now - (5 * 3600 if i == 99 else 600),
            "duration_s": 60 + i,
        }
        for i in range(JOBS)
    ]
    api(srv, "POST", "/api/v1/runs", reports)
    api(srv, "PUT", "/api/v1/jobs/fleet-099", {"schedule": "1h", "grace": "30m"})
    yield srv
    srv.stop()


def _jobs(pg) -> list[str]:
    return pg.locator("li.job").evaluate_all("els => els.map(e => e.dataset.job)")


def test_problems_first_then_pages_a_filter_and_a_job(page, fleet_server: Server) -> None:  # noqa: F811
    page.goto(fleet_server.url + "/")
    page.wait_for_selector("#attention-title", timeout=WAIT_MS)
    healths = page.locator("li.job").evaluate_all("els => els.map(e => e.dataset.health)")
    assert healths[:4] == ["failing", "failing", "failing", "missed"]
    assert "failing" not in healths[4:]
    first = _jobs(page)
    assert len(first) == 4 + 60  # the attention list, then a page of the others
    shot(page, "overview-fleet")

    page.get_by_role("link", name=re.compile("Next page")).click()
    page.wait_for_url(re.compile(r"cursor="), timeout=WAIT_MS)
    second = _jobs(page)
    assert second and not set(second) & set(first)
    assert page.locator("#attention-title").count() == 0

    page.goto(fleet_server.url + "/")
    page.get_by_label("Job id").fill("fleet-01")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"q=fleet-01"), timeout=WAIT_MS)
    assert sorted(_jobs(page)) == [f"fleet-{i:03d}" for i in range(10, 20)]

    page.locator('li.job[data-job="fleet-014"] a.job-name').click()
    page.wait_for_url(fleet_server.url + "/jobs/fleet-014", timeout=WAIT_MS)
    assert "fleet-014" in page.title() or page.locator("h1", has_text="fleet-014").count()
