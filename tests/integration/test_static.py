"""Static files (CSS, JS, the vendored Chart.js): gzip-compressed for clients that ask, with a
cache header, and linked with the version so an upgrade is fetched at once (issue 19)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from fastapi.testclient import TestClient

import backwatch
from backwatch import __version__

STATIC = Path(backwatch.__file__).resolve().parent / "web" / "static"
CHART = "/static/vendor/chart.umd.min.js"


def test_chart_js_is_sent_compressed_and_cached(api: TestClient) -> None:
    raw = api.get(CHART, headers={"Accept-Encoding": "gzip"})
    assert raw.status_code == 200
    assert raw.headers["content-encoding"] == "gzip"
    assert "max-age=86400" in raw.headers["cache-control"]
    assert raw.headers["etag"]
    original = (STATIC / "vendor" / "chart.umd.min.js").read_bytes()
    assert raw.content == original  # the client unpacked it: the same file
    with api.stream("GET", CHART, headers={"Accept-Encoding": "gzip"}) as resp:
        sent = b"".join(resp.iter_raw())
    assert gzip.decompress(sent) == original
    assert len(sent) < len(original) / 2, (len(sent), len(original))


def test_a_client_without_gzip_gets_the_plain_file(api: TestClient) -> None:
    plain = api.get("/static/app.css", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert plain.content == (STATIC / "app.css").read_bytes()
    assert "max-age=86400" in plain.headers["cache-control"]


def test_an_unchanged_file_is_revalidated_with_its_etag(api: TestClient) -> None:
    first = api.get("/static/app.js")
    again = api.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert "max-age=86400" in again.headers["cache-control"]


def test_pages_link_static_files_with_the_version(api: TestClient) -> None:
    page = api.get("/welcome").text
    linked = re.findall(r'(?:href|src)="(/static/(?:app|theme)\.(?:css|js)[^"]*)"', page)
    assert linked and all(url.endswith(f"?v={__version__}") for url in linked), linked
