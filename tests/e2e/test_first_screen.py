"""The dashboard at a glance, in a real browser (issue 19): the jobs that are not fine on
the first screen of a laptop and a phone, times in one format with the viewer's zone, the
theme of the system, the open-alert count of /alerts, and chart points by keyboard."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server, wait_for
from tests.e2e.test_browser import CHROMIUM_ARGS, WAIT_MS, api, browser  # noqa: F401

OK_JOBS = 40
# "2026-12-07 15:15 EST": date, 24-hour time, the zone's short name (docs/dashboard.md)
STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \S+"


@pytest.fixture(scope="module")
def glance_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """40 ok jobs, one failing, one that missed its schedule; the failing one is listed
    last by id, so only a problems-first page shows it early."""
    srv = Server(tmp_path_factory.mktemp("glance") / "data").start()
    now = time.time()
    reports: list[dict[str, Any]] = [
        {
            "job": f"ok-{i:02d}",
            "host": f"host-{i % 7}",
            "status": "success",
            "started_at": now - 900 - i,
            "duration_s": 120 + i,
            "size_bytes": 5_000_000_000 + i,
            "tags": ["prod"],
        }
        for i in range(OK_JOBS)
    ]
    for days in (3, 2, 1):
        reports.append(
            {
                "job": "zz-mail",
                "host": "mx1",
                "status": "success",
                "started_at": now - days * 86400,
                "duration_s": 300 + days,
                "size_bytes": 2_000_000_000,
            }
        )
    reports.append(
        {
            "job": "zz-mail",
            "host": "mx1",
            "status": "failed",
            "started_at": now - 1200,
            "duration_s": 40,
            "message": "repository locked",
        }
    )
    reports.append({"job": "missed-db", "status": "success", "started_at": now - 5 * 3600})
    api(srv, "POST", "/api/v1/runs", reports)
    api(srv, "PUT", "/api/v1/jobs/missed-db", {"schedule": "1h", "grace": "30m"})
    api(srv, "PUT", "/api/v1/jobs/zz-mail", {"schedule": "0 2 * * *", "timezone": "Europe/Berlin"})
    yield srv
    srv.stop()


def _page(browser: Any, width: int, height: int, **context: Any) -> Any:  # noqa: F811
    ctx = browser.new_context(viewport={"width": width, "height": height}, **context)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    return pg


def _close(pg: Any) -> None:
    errors = pg.errors
    pg.context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (375, 812)])
def test_jobs_that_are_not_fine_are_on_the_first_screen(
    browser: Any,  # noqa: F811
    glance_server: Server,
    width: int,
    height: int,
) -> None:
    pg = _page(browser, width, height)
    pg.goto(glance_server.url + "/")
    pg.wait_for_selector("li.job[data-health='missed']", timeout=WAIT_MS)
    assert pg.evaluate("window.scrollY") == 0
    for health, job in (("failing", "zz-mail"), ("missed", "missed-db")):
        card = pg.locator(f"li.job[data-job='{job}']").first
        assert card.get_attribute("data-health") == health
        box = card.bounding_box()
        assert box is not None
        # the whole card, name, badge and facts, without scrolling
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (job, box, width)
        assert card.locator(".badge", has_text=health).is_visible()
    # and no ok job comes before them
    order = pg.locator("li.job").evaluate_all("els => els.map(e => e.dataset.health)")
    assert order[:2] == ["failing", "missed"]
    assert set(order[2:]) == {"ok"}
    _close(pg)


def test_times_show_relative_and_absolute_with_the_viewers_zone(
    browser: Any,  # noqa: F811
    glance_server: Server,
) -> None:
    pg = _page(browser, 1280, 900, timezone_id="America/New_York")
    pg.goto(glance_server.url + "/")
    last_run = pg.locator("li.job[data-job='ok-00'] time[data-ago]").first
    text = last_run.text_content()
    assert re.fullmatch(rf"\d+ min ago {STAMP}", text), text
    zone = text.rsplit(" ", 1)[1]
    assert zone in ("EST", "GMT-5"), text  # New York in December, not the server's UTC
    # the job's cron runs in Berlin: its next due time is shown in both zones
    pg.goto(glance_server.url + "/jobs/zz-mail")
    due = pg.locator("dt:text-is('Next due') + dd time").text_content()
    # relative as app.js writes it: in hours, or minutes before 02:00 Berlin time, or
    # already past when the test runs just after it (the job is then late)
    when = r"(?:in a moment|just now|in \d+ (?:min|h)|\d+ (?:min|h) ago)"
    assert re.fullmatch(rf"{when} {STAMP} \({STAMP}, Europe/Berlin\)", due), due
    assert " 02:00 " in due.split("(")[1]  # 2 at night where the job runs
    assert pg.locator("text=(Europe/Berlin)").count() >= 1
    # a time inside an alert message is in the same format, not raw UTC
    wait_for(
        "an alert for the failing job",
        lambda: api(glance_server, "GET", "/api/v1/alerts?state=open&job=zz-mail")["items"],
        30,
    )
    pg.goto(glance_server.url + "/alerts")
    message = pg.locator("li.alert-item[data-state='open'] .msg").filter(has_text="zz-mail").first
    inner = message.inner_text()
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", inner), inner
    assert re.search(STAMP, inner), inner
    _close(pg)


def test_the_theme_follows_the_system_until_one_is_chosen(
    browser: Any,  # noqa: F811
    glance_server: Server,
) -> None:
    for scheme in ("light", "dark"):
        pg = _page(browser, 1280, 900, color_scheme=scheme)
        pg.goto(glance_server.url + "/")
        assert pg.locator("html").get_attribute("data-theme") == scheme
        if scheme == "light":
            pg.emulate_media(color_scheme="dark")  # the system switches: the page follows
            pg.wait_for_function("document.documentElement.dataset.theme === 'dark'")
            pg.locator("#theme-toggle").click()  # a choice outlives the system's
            pg.emulate_media(color_scheme="dark")
            pg.reload()
            assert pg.locator("html").get_attribute("data-theme") == "light"
        _close(pg)


def test_the_open_alert_count_leaves_out_acknowledged_ones(
    browser: Any,  # noqa: F811
    glance_server: Server,
) -> None:
    wait_for(
        "the alerts of the failing and the missed job",
        lambda: len(api(glance_server, "GET", "/api/v1/alerts?state=open")["items"]) >= 2,
        30,
    )
    alerts = api(glance_server, "GET", "/api/v1/alerts?state=open")["items"]
    missed = next(a for a in alerts if a["job"] == "missed-db")
    api(glance_server, "POST", f"/api/v1/alerts/{missed['id']}/ack", {})
    still_open = len(api(glance_server, "GET", "/api/v1/alerts?state=open")["items"])
    pg = _page(browser, 1280, 900)
    pg.goto(glance_server.url + "/")
    pg.wait_for_function(
        "t => document.querySelector('#alerts-title').textContent.includes(t)",
        arg="1 acknowledged",
        timeout=WAIT_MS,
    )
    heading = " ".join(pg.locator("#alerts-title").inner_text().split())
    assert heading == f"Open alerts {still_open} · 1 acknowledged"
    pg.goto(glance_server.url + "/alerts")
    assert pg.locator("li.alert-item[data-state='open']").count() == still_open
    _close(pg)


def test_chart_points_are_reached_by_keyboard(browser: Any, glance_server: Server) -> None:  # noqa: F811
    pg = _page(browser, 1280, 900)
    pg.goto(glance_server.url + "/jobs/zz-mail")
    pg.wait_for_function("window.Chart && Chart.getChart('chart-duration')")
    runs = api(glance_server, "GET", "/api/v1/runs?job=zz-mail&limit=50")["items"]
    count = len(runs)
    chart = pg.locator("#chart-duration")
    assert chart.get_attribute("role") == "slider"
    chart.focus()
    assert chart.get_attribute("aria-valuenow") == str(count)
    assert "failed" in chart.get_attribute("aria-valuetext")  # the latest run failed
    pg.keyboard.press("ArrowLeft")
    assert chart.get_attribute("aria-valuenow") == str(count - 1)
    said = chart.get_attribute("aria-valuetext")
    assert re.match(rf"run {count - 1} of {count}, {STAMP}, success, duration ", said), said
    assert pg.evaluate("Chart.getChart('chart-duration').getActiveElements()[0].index") == count - 2
    pg.keyboard.press("Home")
    assert chart.get_attribute("aria-valuenow") == "1"
    oldest = min(runs, key=lambda r: r["started_at"])
    pg.keyboard.press("Enter")
    pg.wait_for_url(glance_server.url + f"/runs/{oldest['id']}", timeout=WAIT_MS)
    _close(pg)
