"""A real third-party Healthchecks client from PyPI (``healthchecks-io``, pyproject's
``hc-client`` extra) against a real ``backwatch serve``: it creates, lists by tag, pings,
reads the pings of, pauses and deletes a check, and its badge URLs serve SVG.

The client pins httpx, croniter and packaging below what the dev venv holds, so it runs in
a venv of its own, installed from PyPI once per test session."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, need

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

CLIENT_SCRIPT = r"""
import json, os, sys
from healthchecks_io import Client, CheckCreate
from healthchecks_io.client.exceptions import CheckNotFoundError

url, key = os.environ["HC_URL"], os.environ["HC_KEY"]
out = {}
with Client(api_key=key, api_url=url + "/api/", ping_url=url + "/ping/", api_version=3) as c:
    made = c.create_check(CheckCreate(name="hc-db", tags="prod db", desc="nightly dump",
                                      timeout=86400, grace=3600))
    c.create_check(CheckCreate(name="hc-web", tags="prod", timeout=3600, grace=600))
    c.create_check(CheckCreate(name="hc-dev", tags="dev", timeout=3600, grace=600))
    out["created"] = {"uuid": made.uuid, "name": made.name, "status": made.status,
                      "ping_url": made.ping_url}
    out["tag_prod_db"] = sorted(ch.name for ch in c.get_checks(tags=["prod", "db"]))
    out["tag_prod"] = sorted(ch.name for ch in c.get_checks(tags=["prod"]))
    out["start"] = c.start_ping(uuid=made.uuid)
    out["success"] = c.success_ping(uuid=made.uuid, data="dumped 12 tables")
    out["after_ping"] = c.get_check(made.uuid).status
    import pathlib, time
    status_file, deadline = pathlib.Path(os.environ["HC_STATUS_FILE"]), time.monotonic() + 10
    while not status_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    out["status_file_before"] = status_file.exists()
    out["pings"] = [{"type": p.type, "n": p.number_of_pings, "duration": p.duration}
                    for p in c.get_check_pings(made.uuid)]
    out["paused"] = c.pause_check(made.uuid).status
    out["badges"] = {tag: {"svg": b.svg, "svg3": b.svg3, "shields": b.shields}
                     for tag, b in c.get_badges().items()}
    out["deleted"] = c.delete_check(made.uuid).name
    try:
        c.get_check(made.uuid)
        out["after_delete"] = "still there"
    except CheckNotFoundError:
        out["after_delete"] = "not found"
print(json.dumps(out))
"""


def _requirement() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = extras["optional-dependencies"]["hc-client"]
    return str(requirement)


@pytest.fixture(scope="session")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv holding the client, installed from PyPI."""
    where = tmp_path_factory.mktemp("hc-client") / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", where], capture_output=True, text=True)
    need(made.returncode == 0, f"cannot make a venv (python3-venv?): {made.stderr.strip()}")
    python = where / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", _requirement()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    need(install.returncode == 0, f"cannot install {_requirement()}: {install.stderr[-500:]}")
    return python


def test_healthchecks_io_client_manages_checks(client_python: Path, server: Server) -> None:
    done = subprocess.run(
        [client_python, "-c", CLIENT_SCRIPT],
        env={
            "HC_URL": server.url,
            "HC_KEY": server.token,
            "HC_STATUS_FILE": str(server.data_dir / "status" / "hc-db_status.json"),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    created = out["created"]
    assert created["name"] == "hc-db" and created["status"] == "new"
    assert created["ping_url"] == f"{server.url}/ping/{created['uuid']}"
    assert out["tag_prod_db"] == ["hc-db"]
    assert out["tag_prod"] == ["hc-db", "hc-web"]
    assert out["start"] == [True, "OK"] and out["success"] == [True, "OK"]
    assert out["after_ping"] == "up"
    # the start and the success paired into one run: one ping, a success with a duration
    assert [(p["type"], p["n"]) for p in out["pings"]] == [("success", 1)]
    assert out["pings"][0]["duration"] is not None
    assert out["paused"] == "paused"
    assert set(out["badges"]) == {"*", "prod", "db", "dev"}
    assert out["deleted"] == "hc-db" and out["after_delete"] == "not found"

    # the runs landed in backwatch itself, and the badge URLs the client listed serve SVG
    runs = httpx.get(f"{server.url}/api/v1/runs", params={"job": "hc-db"}).json()["items"]
    assert runs == []  # deleted with its check, and so is its status file
    assert out["status_file_before"]
    status_file = server.data_dir / "status" / "hc-db_status.json"
    deadline = time.monotonic() + 10
    while status_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not status_file.exists()
    for tag, state in (("prod", "up"), ("dev", "up")):
        resp = httpx.get(out["badges"][tag]["svg"])
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("image/svg+xml")
        svg = ET.fromstring(resp.text)
        title = svg.find("{http://www.w3.org/2000/svg}title")
        assert title is not None and title.text == f"{tag}: {state}"
    shields = httpx.get(out["badges"]["prod"]["shields"]).json()
    assert shields == {"schemaVersion": 1, "label": "prod", "message": "up", "color": "success"}
