"""Every dashboard action says what it did, once, on the page it returns to (issue 19)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from tests.integration.test_pages import ORIGIN, _wait_for_alert, csrf_of, report, sign_in


def _flash(page: str) -> str | None:
    found = re.search(r'<p class="flash" id="flash" role="status"[^>]*>(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else None


def _post(api: TestClient, path: str, back: str, **fields: str) -> str:
    csrf = csrf_of(api.get(back).text)
    resp = api.post(path, data={"csrf": csrf, "next": back, **fields}, headers={"Origin": ORIGIN})
    assert resp.status_code == 200, resp.text
    assert str(resp.url).endswith(back)
    return resp.text


def test_ack_resolve_snooze_pause_and_resume_each_say_what_they_did(api: TestClient) -> None:
    report(api, job="db", status="failed", message="pg_dump failed")
    alert = _wait_for_alert(api, "db")
    sign_in(api, api.token)  # type: ignore[attr-defined]
    page = _post(api, f"/alerts/{alert['id']}/ack", "/alerts")
    assert _flash(page) == (
        f"Alert {alert['id']} acknowledged: no more reminders. It resolves by itself when its"
        " condition clears."
    )
    assert _flash(api.get("/alerts").text) is None, "the message is said once"
    page = _post(api, f"/alerts/{alert['id']}/resolve", "/alerts?state=resolved")
    assert "resolved. If what raised it still holds, the next check opens a new alert" in (
        _flash(page) or ""
    )
    page = _post(api, "/jobs/db/snooze", "/jobs/db", **{"for": "4h"})
    assert (
        _flash(page) == "Notifications of db held back for 4 hours; its alerts still open and show."
    )
    page = _post(api, "/jobs/db/pause", "/jobs/db")
    assert _flash(page) == "db paused: no alerts and health 'paused' until you resume it."
    assert api.get("/api/v1/jobs/db").json()["paused"] is True
    page = _post(api, "/jobs/db/resume", "/jobs/db")
    assert _flash(page) == "db resumed: its schedule and alerts count again."


def test_the_pause_button_asks_first_and_resume_does_not(api: TestClient) -> None:
    report(api, job="db")
    sign_in(api, api.token)  # type: ignore[attr-defined]
    page = api.get("/jobs/db").text
    assert 'data-confirm="Pause db? It raises no alerts until you resume it."' in page
    _post(api, "/jobs/db/pause", "/jobs/db")
    assert "data-confirm" not in api.get("/jobs/db").text
