"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a real
``backwatch serve`` with a few reported runs. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, free_port, need, need_tool

SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 10_000


def api(server: Server, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server with three jobs, phases, a log and a failure."""
    srv = Server(tmp_path_factory.mktemp("browser") / "data").start()
    now = time.time()
    for i in range(8):
        api(
            srv,
            "POST",
            "/api/v1/runs",
            {
                "job": "photos",
                "host": "nas",
                "status": "failed" if i == 5 else "success",
                "started_at": now - (8 - i) * 86400,
                "duration_s": 600 + 25 * i,
                "size_bytes": 40_000_000_000 + i * 300_000_000,
                "files": 120_000 + i * 40,
                "files_new": 30 + i,
                "files_changed": 4,
                "bytes_added": 300_000_000,
                "tool": "restic",
                "phases": {"snapshot": 60 + i, "upload": 480 + 20 * i, "prune": 60},
                "log": "\x1b[32mopen repository\x1b[0m\nscan finished\nprocessed 120000 files\n",
            },
        )
    for i in range(5):
        api(
            srv,
            "POST",
            "/api/v1/runs",
            {
                "job": "postgres",
                "host": "db1",
                "status": "success",
                "started_at": now - (5 - i) * 21600,
                "duration_s": 40 + i,
                "size_bytes": 2_000_000_000,
                "phases": {"dump": 30 + i, "upload": 10},
            },
        )
    api(srv, "PUT", "/api/v1/jobs/photos", {"schedule": "0 2 * * *", "tags": ["media"]})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extras not installed
        need(False, "playwright is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(pg: Any, server: Server, next_path: str = "/") -> None:
    pg.goto(f"{server.url}/login?next={next_path}")
    pg.get_by_label("Token").fill(server.token)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(f"{server.url}{next_path}")


def test_overview_cards_equal_the_summary_api(page: Any, hub_server: Server) -> None:
    page.goto(hub_server.url + "/")
    summary = api(hub_server, "GET", "/api/v1/summary?days=30")
    cards = page.eval_on_selector_all(
        "[data-card]",
        "els => Object.fromEntries(els.map(e => [e.dataset.card,"
        " e.querySelector('.figure').dataset.value]))",
    )
    assert cards == {
        key: str(summary[key])
        for key in ("total", "success_rate", "avg_duration_s", "avg_size_bytes")
    }
    assert summary["total"] == 13
    # a relative time, the absolute one with its zone beside it, every detail on hover
    last = page.locator('[data-job="photos"] time[data-ago]').first
    assert re.fullmatch(r"\S+ \w+ ago \d{4}-\d{2}-\d{2} \d{2}:\d{2} \S+", last.text_content())
    title = last.get_attribute("title")
    assert title and title.endswith(f"({last.get_attribute('datetime')})")
    page.wait_for_selector('[data-job="photos"] svg.spark polyline', state="attached")
    shot(page, "overview")


def test_job_charts_have_as_many_points_as_the_api_returns(page: Any, hub_server: Server) -> None:
    runs = api(hub_server, "GET", "/api/v1/runs?job=photos&limit=100")["items"]
    latest = api(hub_server, "GET", f"/api/v1/runs/{runs[0]['id']}")
    page.goto(hub_server.url + "/")
    page.get_by_role("link", name="photos", exact=True).first.click()
    page.wait_for_url(hub_server.url + "/jobs/photos")
    page.wait_for_function("window.Chart && Chart.getChart('chart-stacked')")
    counts = page.evaluate(
        """() => Object.fromEntries(['duration', 'size', 'phases', 'stacked'].map(n => {
             const c = Chart.getChart('chart-' + n);
             return [n, c.data.datasets.map(d => d.data.length)];
           }))"""
    )
    assert counts["duration"] == [len(runs)]
    assert counts["size"] == [len(runs)]
    assert counts["phases"] == [len(latest["phases"])]
    assert counts["stacked"] == [len(runs)] * 3  # one series per phase, a point per run
    shot(page, "job")


def test_the_theme_choice_survives_a_reload(page: Any, hub_server: Server) -> None:
    page.emulate_media(color_scheme="dark")  # no choice made yet: the system's theme
    page.goto(hub_server.url + "/")
    html = page.locator("html")
    assert html.get_attribute("data-theme") == "dark"
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("#theme-toggle").click()
    assert html.get_attribute("data-theme") == "light"
    assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
    page.reload()
    assert html.get_attribute("data-theme") == "light"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != dark_bg
    shot(page, "overview-light")


def test_a_posted_run_appears_on_the_open_overview_without_reload(
    page: Any, hub_server: Server
) -> None:
    page.goto(hub_server.url + "/")
    page.wait_for_selector("body[data-stream='open']", timeout=WAIT_MS)
    page.evaluate("window.__sameDocument = true")
    ack = api(
        hub_server,
        "POST",
        "/api/v1/runs",
        {"job": "live-job", "status": "success", "started_at": time.time() - 5, "duration_s": 5},
    )
    page.wait_for_selector('[data-job="live-job"]', timeout=WAIT_MS)
    page.wait_for_selector(f'[data-live-id="recent"] tr[data-run="{ack["id"]}"]', timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    total = api(hub_server, "GET", "/api/v1/summary?days=30")["total"]
    assert page.locator('[data-card="total"] .figure').get_attribute("data-value") == str(total)


def test_an_alert_acknowledged_on_the_alerts_page_is_acknowledged_in_the_api(
    page: Any, hub_server: Server
) -> None:
    api(
        hub_server,
        "POST",
        "/api/v1/runs",
        {"job": "mail", "status": "failed", "started_at": time.time() - 30, "message": "exit 2"},
    )
    deadline = time.monotonic() + 10
    alert = None
    while alert is None and time.monotonic() < deadline:
        items = api(hub_server, "GET", "/api/v1/alerts?state=open&job=mail")["items"]
        alert = items[0] if items else None
        time.sleep(0.1)
    assert alert is not None, "no alert opened for the failed run"
    sign_in(page, hub_server, "/alerts")
    item = page.locator(f'[data-alert="{alert["id"]}"]')
    shot(page, "alerts")
    item.get_by_role("button", name="Ack").click()
    page.wait_for_url(hub_server.url + "/alerts?state=open")
    acked = api(hub_server, "GET", "/api/v1/alerts?state=acknowledged&job=mail")["items"]
    assert [a["id"] for a in acked] == [alert["id"]]
    assert page.locator(f'[data-alert="{alert["id"]}"]').count() == 0


class _Attacker(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><form id=f method=post action='" + self.target + "'>"
            "<input name=csrf value=guessed></form><script>f.submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_cross_site_form_post_is_refused(page: Any, hub_server: Server) -> None:
    sign_in(page, hub_server)  # the victim is signed in
    port = free_port()
    handler = type("Attacker", (_Attacker,), {"target": f"{hub_server.url}/jobs/photos/pause"})
    evil = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=evil.serve_forever, daemon=True)
    thread.start()
    try:
        # 'localhost' and '127.0.0.1' are different sites to the browser
        with page.expect_response(f"{hub_server.url}/jobs/photos/pause") as info:
            page.goto(f"http://localhost:{port}/attack.html")
        assert info.value.status == 403
        assert "cross-site request refused" in info.value.text()
    finally:
        evil.shutdown()
        evil.server_close()
    assert api(hub_server, "GET", "/api/v1/jobs/photos")["paused"] is False


PAGES = ["/", "/jobs/photos", "/alerts", "/events", "/welcome", "/login"]


def test_phone_width_has_no_horizontal_scroll_and_every_page_is_captured(
    browser: Any, hub_server: Server
) -> None:
    run_id = api(hub_server, "GET", "/api/v1/runs?job=photos&limit=1")["items"][0]["id"]
    every = [*PAGES, f"/runs/{run_id}"]
    wide = ["/events", "/welcome", "/login", f"/runs/{run_id}"]  # the others are shot above
    for width, suffix, paths in ((375, "-phone", every), (1280, "", wide)):
        context = browser.new_context(viewport={"width": width, "height": 800})
        pg = context.new_page()
        for path in paths:
            pg.goto(hub_server.url + path)
            pg.wait_for_load_state("load")
            scroll, client = pg.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll <= client, f"{path} scrolls sideways at {width} px"
            name = path.strip("/").split("/")[0] or "overview"
            shot(pg, f"{name}{suffix}")
        context.close()


def test_keyboard_reaches_the_theme_toggle_and_the_jobs(page: Any, hub_server: Server) -> None:
    page.goto(hub_server.url + "/")
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
    assert "theme-toggle" in seen
    assert "photos" in seen
    # unlabeled form controls would be unreachable by name for screen readers
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('select, input:not([type=hidden])')]
             .filter(el => !el.labels || !el.labels.length).length"""
    )
    assert unlabeled == 0


def test_screenshots_were_saved() -> None:
    need(SHOTS.exists(), "the browser tests did not run (no screenshots)")
    names = {p.stem for p in Path(SHOTS).glob("*.png")}
    assert {"overview", "job", "alerts", "events", "runs", "welcome"} <= names


def _watch_live_page(page: Any) -> None:
    """Mark the charts and canvases and count every DOM change inside <main> from now on."""
    page.evaluate(
        """() => {
             window.__mutations = 0;
             new MutationObserver(list => { window.__mutations += list.length; })
               .observe(document.getElementById('main'),
                        { subtree: true, childList: true, attributes: true, characterData: true });
             document.querySelectorAll('canvas').forEach(c => { c.__seen = true; });
             Chart.getChart('chart-duration').__seen = true;
           }"""
    )


def _refreshes(page: Any) -> int:
    return int(page.locator("body").get_attribute("data-refreshed") or 0)


def _report_charted(server: Server, job: str, ago_s: float) -> dict[str, Any]:
    return server.report(
        {
            "job": job,
            "status": "success",
            "started_at": time.time() - ago_s,
            "duration_s": 60,
            "phases": {"dump": 40, "upload": 20},
        }
    )


def test_a_live_update_that_changes_nothing_moves_no_focus_and_redraws_nothing(
    page: Any, hub_server: Server
) -> None:
    for hours in (30, 20, 10):
        _report_charted(hub_server, "charted", hours * 3600)
    sign_in(page, hub_server, "/jobs/charted")
    page.wait_for_selector("body[data-stream='open']", timeout=WAIT_MS)
    page.wait_for_function("window.Chart && Chart.getChart('chart-duration')")
    page.locator("#pause-toggle").focus()
    _watch_live_page(page)
    before = _refreshes(page)
    # a run of another job: the stream says "change", this page has nothing new to show
    _report_charted(hub_server, "elsewhere", 5)
    page.wait_for_function(
        "n => Number(document.body.dataset.refreshed || 0) > n", arg=before, timeout=WAIT_MS
    )
    assert page.evaluate("document.activeElement.id") == "pause-toggle"
    assert page.evaluate("window.__mutations") == 0, "the unchanged page was redrawn"
    assert page.evaluate("[...document.querySelectorAll('canvas')].every(c => c.__seen)")
    assert page.evaluate("Chart.getChart('chart-duration').__seen") is True


def test_a_live_update_that_changes_the_page_keeps_focus_in_place(
    page: Any, hub_server: Server
) -> None:
    for hours in (30, 20):
        _report_charted(hub_server, "charted2", hours * 3600)
    sign_in(page, hub_server, "/jobs/charted2")
    page.wait_for_selector("body[data-stream='open']", timeout=WAIT_MS)
    page.wait_for_function("window.Chart && Chart.getChart('chart-duration')")
    first_link = page.locator("[data-live-id='history'] a.run-link").first
    first_link.focus()
    _watch_live_page(page)
    ack = _report_charted(hub_server, "charted2", 5)
    page.wait_for_selector(f"[data-live-id='history'] tr[data-run='{ack['id']}']", timeout=WAIT_MS)
    # the history was replaced; focus is on the same place in its new copy, not on <main>
    focused = page.evaluate(
        """() => { const a = document.activeElement;
                   return [a.tagName, !!a.closest("[data-live-id='history']")]; }"""
    )
    assert focused == ["A", True]
    # the charts got the new run: redrawn once, with one more point
    page.wait_for_function(
        "Chart.getChart('chart-duration') && !Chart.getChart('chart-duration').__seen"
    )
    assert page.evaluate("Chart.getChart('chart-duration').data.datasets[0].data.length") == 3


def test_a_filter_waits_for_the_button_from_the_keyboard_and_applies_at_once_by_mouse(
    page: Any, hub_server: Server
) -> None:
    url = hub_server.url + "/jobs/photos"
    page.goto(url)
    status = page.locator("#history-filter select[name=status]")
    status.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(500)  # long enough for a submit to have started
    assert page.url == url, "an arrow key submitted the filter"
    chosen = status.input_value()
    assert chosen
    page.locator("#history-filter button[type=submit]").click()
    page.wait_for_url(f"{url}?status={chosen}")
    # with the mouse, choosing applies the filter without the button
    page.locator("#history-filter select[name=status]").click()
    page.locator("#history-filter select[name=status]").select_option("")
    page.wait_for_url(f"{url}?status=")


def test_a_failed_runs_log_opens_at_its_first_error(page: Any, hub_server: Server) -> None:
    lines = [f"processed chunk {i}" for i in range(200)]
    lines[124] = "Fatal: unable to save snapshot: repository is locked"
    lines[180] = "error: cleanup skipped"
    ack = hub_server.report(
        {
            "job": "loggy",
            "status": "failed",
            "started_at": time.time() - 60,
            "log": "\n".join(lines),
        }
    )
    page.goto(f"{hub_server.url}/runs/{ack['id']}")
    link = page.locator("#log-error-link")
    assert link.inner_text() == "Jump to the first error (line 125)"
    error = page.locator("#log .ln.err")
    assert error.count() == 1 and error.inner_text() == lines[124]
    # the log box is scrolled so the line shows; the page itself stays at the top
    inside = page.evaluate(
        """() => { const box = document.getElementById('log').getBoundingClientRect();
                   const ln = document.getElementById('log-error').getBoundingClientRect();
                   return ln.top >= box.top && ln.bottom <= box.bottom; }"""
    )
    assert inside, "the first error is not in view in the log box"
    assert page.evaluate("window.scrollY") == 0
    link.click()
    assert page.evaluate("location.hash") == "#log-error"


def test_pause_asks_first_and_then_says_what_it_did(page: Any, hub_server: Server) -> None:
    hub_server.report({"job": "pausable", "status": "success", "started_at": time.time() - 60})
    sign_in(page, hub_server, "/jobs/pausable")
    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.locator("#pause-toggle").click()
    page.wait_for_timeout(300)
    assert asked == ["Pause pausable? It raises no alerts until you resume it."]
    assert api(hub_server, "GET", "/api/v1/jobs/pausable")["paused"] is False
    page.once("dialog", answer(True))
    page.locator("#pause-toggle").click()
    page.wait_for_selector("#flash")
    assert api(hub_server, "GET", "/api/v1/jobs/pausable")["paused"] is True
    flash = page.locator("#flash")
    assert (
        flash.inner_text() == "pausable paused: no alerts and health 'paused' until you resume it."
    )
    assert page.evaluate("document.activeElement.id") == "flash"
    assert page.locator("#pause-toggle").inner_text() == "Resume"


def test_a_failed_run_is_told_on_the_charts_by_shape_and_in_words(
    page: Any, hub_server: Server
) -> None:
    runs = api(hub_server, "GET", "/api/v1/runs?job=photos&limit=100")["items"]
    failed = [r["id"] for r in reversed(runs) if r["status"] == "failed"]
    page.goto(hub_server.url + "/jobs/photos")
    page.wait_for_function("window.Chart && Chart.getChart('chart-duration')")
    styles = page.evaluate(
        """() => { const c = Chart.getChart('chart-duration');
                   const ids = JSON.parse(document.getElementById('chart-data').textContent)
                     .runs.map(r => r.id);
                   return ids.map((id, i) => [id, c.data.datasets[0].pointStyle[i]]); }"""
    )
    assert [run_id for run_id, style in styles if style == "crossRot"] == failed
    summary = page.locator("#charts-summary").inner_text()
    assert f"{len(runs)} runs, {len(failed)} failed or timed out" in summary
    described = page.locator("#chart-duration").get_attribute("aria-describedby")
    assert described == "charts-summary chart-keys"
