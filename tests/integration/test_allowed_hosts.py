"""DNS rebinding (issue 14.6): a request naming a host the server is not is refused with
421 and the error envelope, before it reads or writes anything — pings and ingest too."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backwatch.settings import load_settings
from backwatch.web.app import create_app
from tests.conftest import Server

FOREIGN = "rebind.attacker.example"


def _settings(tmp_path: Path, db_url: str, config: str = "") -> Any:
    """Settings as a user has them: the test client's 'testserver' is not allowed."""
    path = tmp_path / "backwatch.toml"  # always given: never the checkout's own
    path.write_text(config)
    env = {
        "BACKWATCH_DATA_DIR": str(tmp_path / "data"),
        "BACKWATCH_DATABASE_URL": db_url,
        "BACKWATCH_CONFIG": str(path),
    }
    return load_settings(env=env)


def _assert_refused(response: Any) -> None:
    assert response.status_code == 421
    error = response.json()["error"]
    assert error["code"] == "misdirected"
    assert "allowed_hosts" in error["message"]


def test_a_foreign_host_is_refused_everywhere(tmp_path: Path, db_url: str) -> None:
    settings = _settings(tmp_path, db_url)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:5001") as client:
        token = settings.token_file.read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        report = {"job": "photos", "status": "success", "started_at": "2026-12-01T02:00:00Z"}
        assert client.post("/api/v1/runs", json=report, headers=auth).status_code == 201
        key = client.get("/api/v1/jobs/photos", headers=auth).json()["ping_url"].split("/")[-1]
        foreign = {"Host": FOREIGN}
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/v1/runs"),
            ("GET", "/api/v1/events?kind=log"),
            ("GET", "/runs"),
            ("GET", f"/ping/{key}"),
            ("POST", f"/ping/{key}/fail"),
            ("GET", "/health"),
        ]:
            _assert_refused(client.request(method, path, headers=foreign))
        # the ingest fast path is checked too, and nothing was stored
        second = {**report, "started_at": "2026-12-02T02:00:00Z"}
        _assert_refused(client.post("/api/v1/runs", json=second, headers={**auth, **foreign}))
        _assert_refused(client.get("/", headers={"Host": f"{FOREIGN}:5001"}))
        assert len(client.get("/api/v1/runs").json()["items"]) == 1
        # the test client's own name is not allowed by default either
        _assert_refused(client.get("/health", headers={"Host": "testserver"}))
        for good in ("127.0.0.1:5001", "localhost:5001", "[::1]:5001", "192.168.1.10", "LOCALHOST"):
            assert client.get("/health", headers={"Host": good}).status_code == 200, good
        assert client.get(f"/ping/{key}", headers={"Host": "localhost"}).text == "OK"


def test_base_url_and_allowed_hosts_name_the_server(tmp_path: Path, db_url: str) -> None:
    config = (
        '[server]\nbase_url = "https://backups.example.org"\n'
        'allowed_hosts = ["nas.lan", "*.home.example"]\n'
    )
    app = create_app(_settings(tmp_path, db_url, config))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for good in ("backups.example.org", "nas.lan:5001", "box.home.example", "NAS.LAN."):
            assert client.get("/health", headers={"Host": good}).status_code == 200, good
        for bad in ("home.example", "example.org", "nas.lan.attacker.example", FOREIGN):
            _assert_refused(client.get("/health", headers={"Host": bad}))


def test_a_star_switches_the_check_off(tmp_path: Path, db_url: str) -> None:
    app = create_app(_settings(tmp_path, db_url, '[server]\nallowed_hosts = ["*"]\n'))
    with TestClient(app) as client:
        assert client.get("/health", headers={"Host": FOREIGN}).status_code == 200
        assert client.get("/health").status_code == 200  # Host: testserver


def test_the_bound_name_is_allowed(tmp_path: Path, db_url: str) -> None:
    app = create_app(_settings(tmp_path, db_url, '[server]\nhost = "backup-host"\n'))
    with TestClient(app, base_url="http://backup-host:5001") as client:
        assert client.get("/health").status_code == 200
        _assert_refused(client.get("/health", headers={"Host": FOREIGN}))


@pytest.fixture
def real_server(tmp_path: Path) -> Any:
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


def _get(url: str, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_real_server_refuses_a_rebound_name(real_server: Server) -> None:
    status, body = _get(real_server.url + "/api/v1/runs", host=f"{FOREIGN}:{real_server.port}")
    assert status == 421
    assert json.loads(body)["error"]["code"] == "misdirected"
    assert _get(real_server.url + "/api/v1/runs")[0] == 200  # Host: 127.0.0.1:PORT
    assert _get(real_server.url + "/health", host=f"localhost:{real_server.port}")[0] == 200


def test_serve_on_every_address_says_how_to_allow_a_name() -> None:
    from backwatch.settings import ServerSettings
    from backwatch.web.hosts import names_hint

    assert "allowed_hosts" in (names_hint(ServerSettings(host="0.0.0.0")) or "")
    assert names_hint(ServerSettings(host="0.0.0.0", base_url="http://nas.lan:5001")) is None
    assert names_hint(ServerSettings(host="0.0.0.0", allowed_hosts=["nas.lan"])) is None
    assert names_hint(ServerSettings()) is None  # 127.0.0.1: only this machine anyway
