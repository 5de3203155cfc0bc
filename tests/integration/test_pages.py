"""Dashboard pages through the real app (in-process client, real SQLite and PostgreSQL):
what each page shows, who sees secrets, sign-in, CSRF, and the overview's weight."""

from __future__ import annotations

import gzip
import html
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings

ORIGIN = "http://testserver"


def report(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"status": "success", "started_at": time.time() - 3600, **fields}
    resp = api.post("/api/v1/runs", json=body, headers=api.auth_headers)  # type: ignore[attr-defined]
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no anti-forgery field"
    return found.group(1)


def sign_in(api: TestClient, token: str) -> None:
    page = api.get("/login")
    resp = api.post(
        "/login",
        data={"token": token, "csrf": csrf_of(page.text), "next": "/"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    assert "bw_session" in resp.headers["set-cookie"]
    assert "HttpOnly" in resp.headers["set-cookie"]


def test_a_fresh_install_shows_how_to_report_a_first_run(api: TestClient, settings) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert "Report your first backup" in page.text
    assert "http://testserver/api/v1/runs" in page.text
    assert str(settings.token_file.resolve()) in page.text
    # anonymous viewers get no ping URL, and nobody ever sees the token itself
    assert "/ping/" not in page.text
    assert api.token not in page.text  # type: ignore[attr-defined]

    sign_in(api, api.token)  # type: ignore[attr-defined]
    page = api.get("/welcome")
    found = re.search(r"http://testserver/ping/([A-Za-z0-9_-]+)/first-backup", page.text)
    assert found, "a signed-in viewer sees a real ping URL"
    assert api.token not in page.text  # type: ignore[attr-defined]
    # the URL shown works as printed: it creates the job and records a run
    ping = api.get(f"/ping/{found.group(1)}/first-backup?create=1")
    assert ping.status_code in (200, 201), ping.text
    jobs = api.get("/api/v1/jobs").json()["items"]
    assert [j["id"] for j in jobs] == ["first-backup"]


def test_the_overview_cards_match_the_summary_api(api: TestClient) -> None:
    report(api, job="photos", duration_s=600, size_bytes=1_000_000, host="nas")
    report(api, job="photos", duration_s=700, size_bytes=3_000_000, host="nas")
    report(api, job="db", status="failed", duration_s=5, host="db1")
    html = api.get("/").text
    summary = api.get("/api/v1/summary?days=30").json()
    cards = dict(
        re.findall(
            r'data-card="(\w+)">\s*<h3>[^<]*</h3>\s*<p class="figure[^"]*" data-value="([^"]*)"',
            html,
        )
    )
    assert cards == {
        "total": str(summary["total"]),
        "success_rate": str(summary["success_rate"]),
        "avg_duration_s": str(summary["avg_duration_s"]),
        "avg_size_bytes": str(summary["avg_size_bytes"]),
    }
    assert summary["total"] == 3
    assert "66.7 %" in html  # human units next to the raw values
    # the grid: both jobs, the failing one first, each with its last size
    assert html.index('data-job="db"') < html.index('data-job="photos"')
    assert "2.9 MB" in html


def test_overview_filters_by_host_tag_and_health(api: TestClient) -> None:
    report(api, job="photos", host="nas")
    report(api, job="db", host="db1", status="failed")
    api.put("/api/v1/jobs/photos", json={"tags": ["media"]}, headers=api.auth_headers)  # type: ignore[attr-defined]

    def jobs_on(url: str) -> list[str]:
        return re.findall(r'data-job="([^"]+)"', api.get(url).text)

    assert jobs_on("/?host=nas") == ["photos"]
    assert jobs_on("/?tag=media") == ["photos"]
    assert jobs_on("/?health=failing") == ["db"]
    assert jobs_on("/?health=paused") == []


def test_the_job_page_hides_the_ping_url_from_anonymous_viewers(api: TestClient) -> None:
    report(api, job="photos", phases={"snapshot": 10, "upload": 50}, duration_s=60)
    key = (
        api.get("/api/v1/jobs/photos", headers=api.auth_headers)
        .json()["ping_url"]
        .rsplit("/", 1)[1]
    )  # type: ignore[attr-defined]
    anonymous = api.get("/jobs/photos").text
    assert key not in anonymous
    assert "Sign in</a> to see it" in anonymous
    assert "/jobs/photos/pause" not in anonymous  # no action for a viewer who may not act
    sign_in(api, api.token)  # type: ignore[attr-defined]
    signed = api.get("/jobs/photos").text
    assert f"http://testserver/ping/{key}" in signed
    assert api.token not in signed  # type: ignore[attr-defined]
    assert "/jobs/photos/pause" in signed
    assert '"job": "photos"' in html.unescape(signed)  # the curl snippet carries this job's id


def test_a_read_token_may_look_but_neither_act_nor_see_secrets(api: TestClient) -> None:
    from backwatch.services import tokens

    report(api, job="photos")
    hub = api.app.state.hub  # type: ignore[attr-defined]
    secret, _ = hub.write(tokens.create_token("viewer", "read", time.time()))
    sign_in(api, secret)
    page = api.get("/jobs/photos").text
    job = api.get("/api/v1/jobs/photos", headers=api.auth_headers).json()  # type: ignore[attr-defined]
    assert job["ping_url"].rsplit("/", 1)[1] not in page
    resp = api.post("/jobs/photos/pause", data={"csrf": csrf_of(page)}, headers={"Origin": ORIGIN})
    assert resp.status_code == 403
    assert "operate or admin token" in resp.text
    assert api.get("/api/v1/jobs/photos").json()["paused"] is False


def test_pause_and_resume_from_the_page(api: TestClient) -> None:
    report(api, job="photos")
    sign_in(api, api.token)  # type: ignore[attr-defined]
    csrf = csrf_of(api.get("/jobs/photos").text)
    resp = api.post(
        "/jobs/photos/pause",
        data={"csrf": csrf},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/jobs/photos"
    job = api.get("/api/v1/jobs/photos").json()
    assert job["paused"] is True and job["health"] == "paused"
    page = api.get("/jobs/photos").text
    assert ">Resume</button>" in page
    events = api.get("/api/v1/events?kind=state_change&job=photos").json()["items"]
    assert events[0]["to_state"] == "paused" and events[0]["actor"] == "web:default"
    api.post("/jobs/photos/resume", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert api.get("/api/v1/jobs/photos").json()["paused"] is False


@pytest.mark.parametrize(
    ("headers", "with_token"),
    [
        ({"Origin": "http://evil.example"}, True),  # another site, even with the right token
        ({"Origin": "null"}, True),  # sandboxed or privacy-redirected form
        ({"Sec-Fetch-Site": "cross-site"}, True),
        ({"Referer": "http://evil.example/attack.html"}, True),
        ({"Origin": ORIGIN}, False),  # our own origin but no token
    ],
)
def test_forged_or_cross_site_posts_are_refused(
    api: TestClient, headers: dict[str, str], with_token: bool
) -> None:
    report(api, job="photos")
    sign_in(api, api.token)  # type: ignore[attr-defined]
    csrf = csrf_of(api.get("/jobs/photos").text)
    data = {"csrf": csrf} if with_token else {"next": "/"}
    resp = api.post("/jobs/photos/pause", data=data, headers=headers)
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("text/html")
    assert api.get("/api/v1/jobs/photos").json()["paused"] is False


def test_a_stale_csrf_token_is_refused(api: TestClient) -> None:
    report(api, job="photos")
    sign_in(api, api.token)  # type: ignore[attr-defined]
    resp = api.post(
        "/jobs/photos/pause",
        data={"csrf": "x" * 32},
        headers={"Origin": ORIGIN},
    )
    assert resp.status_code == 403
    assert "anti-forgery token" in resp.text


def test_pages_send_security_headers_and_escape_user_text(api: TestClient) -> None:
    report(api, job="xss", message="<script>alert(1)</script>", log="<img src=x onerror=alert(1)>")
    run_id = api.get("/api/v1/runs?job=xss").json()["items"][0]["id"]
    for url in ("/", "/jobs/xss", f"/runs/{run_id}", "/events"):
        resp = api.get(url)
        assert resp.status_code == 200, url
        assert "<script>alert(1)" not in resp.text and "<img src=x" not in resp.text
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"


def test_the_run_page_strips_ansi_codes_and_shows_the_timeline(api: TestClient) -> None:
    log = (
        "\x1b[32mstarting\x1b[0m\nprogress 10%\rprogress 100%\n\x1b[1;31merror:\x1b[0m disk full\n"
    )
    ack = report(
        api,
        job="photos",
        log=log,
        size_bytes=10_000,
        bytes_added=2_500,
        files=120,
        files_new=3,
        files_changed=4,
        phases=[{"name": "snapshot", "duration_s": 5}, {"name": "upload", "duration_s": 20}],
    )
    page = api.get(f"/runs/{ack['id']}").text
    assert "\x1b" not in page
    assert '<div class="ln">starting</div>' in page
    assert '<div class="ln">progress 100%</div>' in page  # a redrawn line keeps its last state
    assert "error: disk full" in page
    assert "4.0×" in page  # dedup ratio: 10 000 processed / 2 500 added
    assert "phase snapshot" in page and "phase upload" in page
    assert page.count('<rect class="bar') == 2


def test_the_events_page_filters_by_kind_and_time(api: TestClient) -> None:
    report(api, job="photos")
    api.post("/api/v1/jobs/photos/pause", headers=api.auth_headers)  # type: ignore[attr-defined]
    page = api.get("/events?kind=state_change&since=1h").text
    assert "paused" in page and "k-config" not in page
    page = api.get("/events?kind=config").text
    assert "created" in page and "k-state_change" not in page
    bad = api.get("/events?kind=nonsense")
    assert bad.status_code == 422 and "kind" in bad.text
    assert bad.headers["content-type"].startswith("text/html")
    bad = api.get("/events?since=soon")
    assert bad.status_code == 422 and "since" in bad.text


def test_an_unknown_job_or_run_is_a_readable_404_page(api: TestClient) -> None:
    for url in ("/jobs/nope", "/runs/nope"):
        resp = api.get(url)
        assert resp.status_code == 404
        assert "not found" in resp.text and "<html" in resp.text


def test_the_history_is_paginated_and_filtered_by_status(api: TestClient) -> None:
    now = time.time()
    for i in range(30):
        report(
            api,
            job="photos",
            id=f"run-{i:02d}",
            status="failed" if i % 10 == 0 else "success",
            started_at=now - 86400 + i * 60,
            duration_s=10,
        )
    first = api.get("/jobs/photos").text
    history = first[first.index('data-live-id="history"') :]
    assert len(re.findall(r'<tr data-run="', history)) == 25
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older
    second = api.get(older.group(1).replace("&amp;", "&")).text
    assert len(re.findall(r'<tr data-run="', second[second.index('data-live-id="history"') :])) == 5
    failed = api.get("/jobs/photos?status=failed").text
    runs = re.findall(r'<tr data-run="([^"]+)"', failed[failed.index('data-live-id="history"') :])
    assert runs == ["run-20", "run-10", "run-00"]
    # the charts carry one point per run the API returns
    api_runs = api.get("/api/v1/runs?job=photos&limit=100").json()["items"]
    assert "last 30 runs" in first and len(api_runs) == 30


def test_alerts_can_be_acknowledged_and_resolved_from_the_page(api: TestClient) -> None:
    report(api, job="db", status="failed", message="pg_dump failed")
    alert = _wait_for_alert(api, "db")
    page = api.get("/alerts").text
    assert f'data-alert="{alert["id"]}"' in page
    assert f"/alerts/{alert['id']}/ack" not in page  # anonymous: no buttons
    sign_in(api, api.token)  # type: ignore[attr-defined]
    page = api.get("/alerts").text
    csrf = csrf_of(page)
    resp = api.post(
        f"/alerts/{alert['id']}/ack",
        data={"csrf": csrf, "next": "/alerts"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    acked = api.get("/api/v1/alerts?state=acknowledged").json()["items"]
    assert [a["id"] for a in acked] == [alert["id"]]
    assert acked[0]["acknowledged_by"] == "web:default"
    resp = api.post(
        f"/alerts/{alert['id']}/resolve", data={"csrf": csrf}, headers={"Origin": ORIGIN}
    )
    assert resp.status_code == 200  # followed the redirect to the alerts page
    assert api.get("/api/v1/alerts?state=resolved").json()["items"][0]["id"] == alert["id"]
    snooze = api.post(
        "/jobs/db/snooze", data={"csrf": csrf, "for": "4h"}, headers={"Origin": ORIGIN}
    )
    assert snooze.status_code == 200
    events = api.get("/api/v1/events?kind=config&job=db").json()["items"]
    assert events[0]["to_state"] == "snoozed"
    bad = api.post(
        "/jobs/db/snooze", data={"csrf": csrf, "for": "soon"}, headers={"Origin": ORIGIN}
    )
    assert bad.status_code == 422 and "for" in bad.text


def _wait_for_alert(api: TestClient, job: str) -> dict[str, Any]:
    """The alert evaluator runs after the commit, on its own task: wait for its verdict."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = api.get(f"/api/v1/alerts?state=open&job={job}").json()["items"]
        if items:
            return items[0]  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no alert opened for {job}")


def test_the_overview_shows_open_alerts(api: TestClient) -> None:
    report(api, job="db", status="failed", message="pg_dump failed")
    alert = _wait_for_alert(api, "db")
    page = api.get("/").text
    strip = page[page.index('data-live-id="alerts"') : page.index('id="jobs-title"')]
    assert f'data-alert="{alert["id"]}"' in strip


# --- protected reads, the proxy header ---------------------------------------------------


@pytest.fixture
def protected(tmp_path: Path, db_url: str):
    from backwatch.web.app import create_app

    config = tmp_path / "backwatch.toml"
    config.write_text('[auth]\nread = "token"\nproxy_header = "X-Forwarded-User"\n')
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    with TestClient(create_app(settings)) as client:
        client.token = settings.token_file.read_text().strip()  # type: ignore[attr-defined]
        client.auth_headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
        yield client


def test_protected_reads_ask_for_a_token(protected: TestClient) -> None:
    report(protected, job="photos")
    for url in ("/", "/jobs/photos", "/events", "/alerts", "/welcome"):
        resp = protected.get(url, follow_redirects=False)
        assert resp.status_code == 303, url
        assert resp.headers["location"].startswith("/login?next=")
    assert protected.get("/api/v1/stream").status_code == 401
    page = protected.get("/login")
    bad = protected.post(
        "/login",
        data={"token": "bw_wrong", "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 401 and "not valid" in bad.text
    sign_in(protected, protected.token)  # type: ignore[attr-defined]
    assert protected.get("/jobs/photos").status_code == 200
    # signing out forgets the token
    csrf = csrf_of(protected.get("/").text)
    protected.post("/logout", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert protected.get("/", follow_redirects=False).status_code == 303


def test_a_trusted_proxy_header_signs_the_viewer_in(protected: TestClient) -> None:
    report(protected, job="photos")
    user = {"X-Forwarded-User": "alice"}
    page = protected.get("/jobs/photos", headers=user)
    assert page.status_code == 200
    assert "/ping/" in page.text  # a proxy-authenticated viewer may see the ping URL
    assert "alice" in page.text
    resp = protected.post(
        "/jobs/photos/pause",
        data={"csrf": csrf_of(page.text)},
        headers={**user, "Origin": ORIGIN},
    )
    assert resp.status_code == 200
    events = protected.get(
        "/api/v1/events?kind=state_change", headers=protected.auth_headers
    ).json()  # type: ignore[attr-defined]
    assert events["items"][0]["actor"] == "web:alice"


def test_login_redirects_only_to_this_site(protected: TestClient) -> None:
    page = protected.get("/login?next=https://evil.example/")
    resp = protected.post(
        "/login",
        data={
            "token": protected.token,  # type: ignore[attr-defined]
            "csrf": csrf_of(page.text),
            "next": "//evil.example/x",
        },
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/"


# --- weight of the overview --------------------------------------------------------------


def test_the_overview_of_500_jobs_stays_light(api: TestClient) -> None:
    """≤ 300 KB transferred in all (HTML gzip-compressed, CSS, JS; no chart library)."""
    from backwatch.services.due import refresh_due
    from backwatch.store import tables as t
    from backwatch.web.pages.overview import PAGE_SIZE

    # Seeded straight into the tables, in the state ingest leaves them (job snapshot
    # columns filled): 10 000 reports through the services would take far too long here.
    hub = api.app.state.hub  # type: ignore[attr-defined]
    now = time.time()
    jobs, runs = [], []
    for j in range(500):
        job = f"job-{j:03d}-{'x' * 20}"
        for k in range(20):
            runs.append(
                {
                    "id": f"r{j:03d}-{k:02d}",
                    "job": job,
                    "host": f"host-{j % 40}",
                    "status": "failed" if k % 7 == 3 else "success",
                    "started_at": now - 86400 * k - j,
                    "finished_at": now - 86400 * k - j + 100,
                    "duration_s": 100.0 + k + j / 7,
                    "size_bytes": 10**9 + j * k,
                    "message": "snapshot 1a2b3c4d saved",
                    "source": "api",
                    "trigger": "api",
                    "updated_at": now,
                }
            )
        last = runs[-20]
        jobs.append(
            {
                "id": job,
                "description": "Nightly backup of the things that matter",
                "host": last["host"],
                "schedule": "0 2 * * *",
                "timezone": "UTC",
                "grace_s": 3600.0,
                "tags": ["prod", f"team-{j % 5}"],
                "paused": False,
                "ping_key": f"key-{j:03d}",
                "origin": "api",
                "created_at": now - 30 * 86400,
                "updated_at": now,
                "last_run_id": last["id"],
                "last_started_at": last["started_at"],
                "last_finished_at": last["finished_at"],
                "last_status": last["status"],
                "last_duration_s": last["duration_s"],
                "last_size_bytes": last["size_bytes"],
                "last_success_at": last["finished_at"],
                "runs_total": 20,
            }
        )

    def seed(conn: Any, unit: Any) -> None:
        conn.execute(t.jobs.insert(), jobs)
        conn.execute(t.runs.insert(), runs)
        refresh_due(conn)  # as each write through the services leaves a scheduled job

    hub.write(seed)

    page = api.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["content-encoding"] == "gzip"
    # a page of cards (issue 18: the grid of every job was 85 MB at 100,000 jobs) …
    assert page.text.count('data-job="') == PAGE_SIZE
    assert page.text.count('data-spark="') == PAGE_SIZE
    # … and every job one page or another, once
    seen, url = re.findall(r'data-job="([^"]+)"', page.text), "/"
    for _ in range(20):
        found = re.search(r'<a href="(/\?[^"]*cursor=[^"]+)" rel="next"', api.get(url).text)
        if not found:
            break
        url = html.unescape(found.group(1))
        seen += re.findall(r'data-job="([^"]+)"', api.get(url).text)
    assert sorted(seen) == sorted(job["id"] for job in jobs)
    spark = re.search(r'data-job="job-000-x+".*?data-spark="([^"]*)"', page.text, re.S)
    assert spark, "job-000 has a sparkline"
    # its last 20 durations, oldest first (k = 19 … 0 days ago)
    assert spark.group(1).split() == [f"{100.0 + k:.3g}" for k in reversed(range(20))]
    html_bytes = len(gzip.compress(page.content, 6))
    assets = re.findall(r'(?:href|src)="(/static/[^"?]+)', page.text)
    assert not any("chart" in a for a in assets), "the overview does not load Chart.js"
    asset_bytes = sum(len(api.get(a).content) for a in set(assets))
    assert html_bytes + asset_bytes <= 300_000, (html_bytes, asset_bytes)
