"""axe-core (vendored from npm for tests only, tests/fixtures/vendor/axe-core) on every
dashboard page, in both themes, at a desktop and a phone width, against a real ``backwatch
serve`` with an ok, a failing, a missed and a paused job, their runs and alerts. Any serious
or critical violation fails, ``target-size`` (off by default in axe) included (issue 19).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, Server, wait_for
from tests.e2e.test_browser import api, browser, sign_in  # noqa: F401  (fixture)

AXE = ROOT / "tests" / "fixtures" / "vendor" / "axe-core" / "axe.min.js"
VIEWPORTS = [(1280, 900), (375, 812)]
THEMES = ["light", "dark"]
LONG_URL = "https://backups.example.com/" + "runbooks/" * 8 + "restore-the-photo-library.html"


@pytest.fixture(scope="module")
def a11y_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """ok, failing, missed and paused jobs; an open, an acknowledged and a resolved alert."""
    srv = Server(
        tmp_path_factory.mktemp("a11y") / "data", env={"BACKWATCH_ALERTS__TICK_SECONDS": "1"}
    ).start()
    now = time.time()
    for i in range(6):
        srv.report(
            {
                "job": "photos",
                "host": "nas",
                "status": "success",
                "started_at": now - (6 - i) * 86400,
                "duration_s": 600 + 20 * i,
                "size_bytes": 40_000_000_000 + i * 10**8,
                "phases": {"snapshot": 60, "upload": 500 + i},
                "tool": "restic",
            }
        )
    api(
        srv,
        "PUT",
        "/api/v1/jobs/photos",
        {
            "schedule": "0 2 * * *",
            "tags": ["media", "nas", "offsite-copy", "family", "raw-files", "weekly", "2026"],
            "description": f"The photo library; how to restore: {LONG_URL}",
        },
    )
    for i in range(3):
        srv.report(
            {
                "job": "mail",
                "host": "mx1",
                "status": "failed" if i == 2 else "success",
                "started_at": now - (3 - i) * 3600,
                "duration_s": 30,
                "message": "exit 2: repository locked" if i == 2 else None,
                "log": "open repository\nerror: repository is already locked\n",
            }
        )
    api(srv, "PUT", "/api/v1/jobs/offsite", {"schedule": "1h", "grace": "30m", "tags": ["s3"]})
    srv.report({"job": "offsite", "status": "success", "started_at": now - 3 * 3600})
    srv.report({"job": "wiki", "status": "success", "started_at": now - 600, "duration_s": 12})
    srv.report({"job": "old-nas", "status": "failed", "started_at": now - 7200})
    wait_for(
        "the missed and failing alerts",
        lambda: (
            {a["rule"] for a in api(srv, "GET", "/api/v1/alerts?state=open")["items"]}
            >= {"missed", "failed"}
        ),
    )
    opened = api(srv, "GET", "/api/v1/alerts?state=open&job=old-nas")["items"]
    api(srv, "POST", f"/api/v1/alerts/{opened[0]['id']}/ack", {})
    api(srv, "POST", "/api/v1/jobs/old-nas/pause", {})
    yield srv
    srv.stop()


def scan(page: Any) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now."""
    result: list[dict[str, Any]] = page.evaluate(
        """async () => {
             const r = await axe.run(document, {
               rules: { 'target-size': { enabled: true } }, resultTypes: ['violations'] });
             return r.violations
               .filter(v => v.impact === 'serious' || v.impact === 'critical')
               .map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map(
                 n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\\n')[1]) }));
           }"""
    )
    return result


def set_theme(page: Any, theme: str) -> None:
    """Through the page's own toggle, as a user would (the charts redraw on it)."""
    if page.locator("html").get_attribute("data-theme") != theme:
        page.locator("#theme-toggle").click()
    assert page.locator("html").get_attribute("data-theme") == theme


def test_every_page_has_no_serious_axe_violation(
    browser: Any,  # noqa: F811
    a11y_server: Server,
) -> None:
    assert AXE.exists(), "axe-core is not vendored at tests/fixtures/vendor/axe-core"
    failed_run = api(a11y_server, "GET", "/api/v1/runs?job=mail&status=failed&limit=1")["items"]
    ok_run = api(a11y_server, "GET", "/api/v1/runs?job=photos&limit=1")["items"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # an init script is not held to the page's CSP (script-src 'self'), which stays on
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    signed_out = ["/login", "/alerts", "/jobs/no-such-job"]
    signed_in = [
        "/",
        "/?health=failing",
        "/jobs/photos",
        "/jobs/mail",
        "/jobs/offsite",
        "/jobs/old-nas",
        f"/runs/{failed_run[0]['id']}",
        f"/runs/{ok_run[0]['id']}",
        "/alerts",
        "/alerts?state=acknowledged",
        "/alerts?state=resolved",
        "/events",
        "/welcome",
    ]
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        for path in [*signed_out, "sign-in", *signed_in]:
            if path == "sign-in":
                sign_in(page, a11y_server)
                continue
            page.goto(a11y_server.url + path)
            page.wait_for_load_state("load")
            for width, height in VIEWPORTS:
                page.set_viewport_size({"width": width, "height": height})
                for theme in THEMES:
                    set_theme(page, theme)
                    violations = scan(page)
                    if violations:
                        found[f"{path} {theme} {width}px"] = violations
                # after the scans: the charts have followed the new width by now
                scroll, client = page.evaluate(
                    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                assert scroll <= client, f"{path} scrolls sideways at {width} px"
    finally:
        context.close()
    report = "\n".join(
        f"{where}: {v['id']} ({v['impact']}) {v['nodes']}"
        for where, violations in found.items()
        for v in violations
    )
    assert not found, f"axe found serious or critical violations:\n{report}"
    assert not errors, f"JavaScript errors: {errors}"


def test_a_long_url_in_a_description_is_a_link_that_wraps_on_a_phone(
    browser: Any,  # noqa: F811
    a11y_server: Server,
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        page.goto(a11y_server.url + "/jobs/photos")
        link = page.locator(".page-head .lead a")
        assert link.get_attribute("href") == LONG_URL
        assert link.inner_text() == LONG_URL
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, "the description's URL widens the page"
    finally:
        context.close()


def test_the_connecting_indicator_stays_hidden_where_there_are_no_live_updates(
    browser: Any,  # noqa: F811
    a11y_server: Server,
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        for path in ("/login", "/jobs/no-such-job"):
            page.goto(a11y_server.url + path)
            status = page.locator("#live-status")
            assert status.get_attribute("hidden") is not None
            assert status.evaluate("el => getComputedStyle(el).display") == "none", path
    finally:
        context.close()
