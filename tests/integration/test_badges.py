"""Status badges on a real app: per job and per tag, SVG / shields.io / JSON, two and three
states, listed by /api/v3/badges/, gone (404) once the badge key is reset."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from backwatch.timeutil import iso

SVG = "{http://www.w3.org/2000/svg}"


def report(api, job: str, *, ago_s: float, status: str = "success") -> None:
    """A finished run of ``job`` that started ``ago_s`` seconds ago, on an hourly schedule
    with an hour's grace: 3700 s ago makes it late, 3 h ago missed."""
    put = api.put(f"/api/v1/jobs/{job}", json={"schedule": "1h", "grace": "1h", "tags": ["site"]},
                  headers=api.auth_headers)  # fmt: skip
    assert put.status_code == 200, put.text
    start = time.time() - ago_s
    run = {"job": job, "status": status, "started_at": iso(start), "finished_at": iso(start + 5)}
    assert api.post("/api/v1/runs", json=run, headers=api.auth_headers).status_code in (200, 201)


def badge_list(api) -> dict:
    resp = api.get("/api/v3/badges/", headers={"X-Api-Key": api.token})
    assert resp.status_code == 200, resp.text
    return resp.json()["badges"]


def job_badges(api, job: str) -> dict:
    """The job's badge URLs: its check's badge_url (2-state SVG) and the page's snippets."""
    check = api.get("/api/v3/checks/", params={"slug": job}, headers={"X-Api-Key": api.token})
    url = check.json()["checks"][0]["badge_url"]
    base = url.rsplit(".", 1)[0]
    sig2 = urlsplit(url).path.split("/")[3]
    return {"svg": url, "base": base, "sig2": sig2}


def get(api, url: str):
    return api.get(urlsplit(url).path)


def svg_says(resp) -> str:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(resp.text)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text
    return title.text


def test_tag_badges_two_and_three_states(api):
    report(api, "ok-job", ago_s=60)
    report(api, "late-job", ago_s=3700)
    urls = badge_list(api)["site"]
    assert svg_says(get(api, urls["svg"])) == "site: up"  # late counts as up with two states
    assert svg_says(get(api, urls["svg3"])) == "site: late"
    assert get(api, urls["json3"]).json() == {"status": "late", "total": 2, "grace": 1, "down": 0}
    assert get(api, urls["shields3"]).json() == {
        "schemaVersion": 1, "label": "site", "message": "late", "color": "important",
    }  # fmt: skip
    report(api, "down-job", ago_s=3 * 3600)
    assert svg_says(get(api, urls["svg"])) == "site: down"
    assert get(api, urls["shields"]).json()["color"] == "critical"
    everything = badge_list(api)["*"]
    assert svg_says(get(api, everything["svg"])) == "backups: down"


def test_job_badges(api):
    report(api, "nightly", ago_s=60)
    report(api, "failing", ago_s=60, status="failed")
    assert svg_says(get(api, job_badges(api, "nightly")["svg"])) == "nightly: up"
    assert svg_says(get(api, job_badges(api, "failing")["svg"])) == "failing: down"
    shields = get(api, job_badges(api, "nightly")["base"] + ".shields").json()
    assert shields["label"] == "nightly" and shields["message"] == "up"


def test_badge_urls_cannot_be_guessed_and_reset_makes_them_404(api):
    report(api, "one", ago_s=60)
    report(api, "two", ago_s=60)
    one = job_badges(api, "one")
    # the signature of one job's badge does not open another's
    other = one["svg"].replace("/job/one.svg", "/job/two.svg")
    assert get(api, other).status_code == 404
    assert get(api, one["svg"].replace(one["sig2"], "AAAAAAAA-2")).status_code == 404
    tag_url = badge_list(api)["site"]["svg"]
    assert get(api, tag_url).status_code == 200

    assert api.post("/api/v1/badge-key/reset").status_code == 401  # admin only
    reset = api.post("/api/v1/badge-key/reset", headers=api.auth_headers)
    assert reset.status_code == 200, reset.text
    assert get(api, one["svg"]).status_code == 404
    assert get(api, tag_url).status_code == 404
    fresh = badge_list(api)["site"]["svg"]
    assert fresh != tag_url and svg_says(get(api, fresh)) == "site: up"


def test_a_label_is_escaped_in_the_svg():
    from backwatch.services.badges import svg

    for label in ('a<b&c "d"', "ünïcode", ""):
        root = ET.fromstring(svg(label, "down"))
        assert root.find(f"{SVG}title").text == f"{label}: down"


def test_the_job_page_shows_badge_snippets_to_a_signed_in_viewer(api):
    import html
    import re

    from tests.integration.test_pages import sign_in

    report(api, "paged", ago_s=60)
    anonymous = api.get("/jobs/paged").text
    assert "/badge/" not in anonymous and "Sign in" in anonymous
    sign_in(api, api.token)
    page = api.get("/jobs/paged").text
    markdown = re.search(r'<code id="badge-markdown">([^<]+)</code>', page)
    assert markdown, "no Markdown badge snippet"
    url = html.unescape(markdown.group(1)).split("](")[1].rstrip(")")
    assert svg_says(get(api, url)) == "paged: up"
    assert 'id="badge-shields">https://img.shields.io/endpoint?url=' in page
