"""The commands the dashboard prints work as printed, against a real server."""

from __future__ import annotations

import html
import json
import re
import subprocess
import urllib.request

from tests.conftest import Server, need_tool


def _snippet(page: str, snippet_id: str) -> str:
    found = re.search(rf'<code id="{snippet_id}">(.*?)</code>', page, re.S)
    assert found, f"no {snippet_id} on the page"
    return html.unescape(found.group(1))


def test_the_first_run_curl_command_reports_a_run(server: Server) -> None:
    need_tool("curl")
    with urllib.request.urlopen(server.url + "/", timeout=10) as resp:
        page = resp.read().decode()
    command = _snippet(page, "snippet-curl")
    assert server.token not in page
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["job"] == "first-backup"
    with urllib.request.urlopen(server.url + "/api/v1/jobs", timeout=10) as resp:
        jobs = json.loads(resp.read())["items"]
    assert [j["id"] for j in jobs] == ["first-backup"]
    # the overview replaces the first-run page once a job exists
    with urllib.request.urlopen(server.url + "/", timeout=10) as resp:
        assert 'data-job="first-backup"' in resp.read().decode()
