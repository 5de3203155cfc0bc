"""Shared fixtures: real SQLite files, the real local PostgreSQL, a real server process.

Tests that need something from outside Python (PostgreSQL, restic, chromium …) call
``need(...)``: it skips with a reason, or fails under BACKWATCH_REQUIRE_ALL=1 (CI), so
nothing is skipped silently there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ALL = os.environ.get("BACKWATCH_REQUIRE_ALL") == "1"
PG_URL = os.environ.get(
    "BACKWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ROOT = Path(__file__).resolve().parent.parent
BACKWATCH = [sys.executable, "-m", "backwatch"]


def need(condition: bool, reason: str) -> None:
    """Skip (or, under BACKWATCH_REQUIRE_ALL=1, fail) unless ``condition`` holds."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by BACKWATCH_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed (apt-get install {name})")
    assert path is not None
    return path


def _pg_reachable() -> bool:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


#: the suite's own switches, kept; every other BACKWATCH_* variable is the user's
SUITE_VARIABLES = frozenset({"BACKWATCH_TEST_PG_URL", "BACKWATCH_REQUIRE_ALL"})
#: variables outside the BACKWATCH_ prefix that backwatch reads as settings (TZ: the
#: default time zone of configured jobs)
SETTING_VARIABLES = frozenset({"RETENTION_DAYS", "TZ"})


def scrub_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the user's backwatch variables (``BACKWATCH_URL``, ``BACKWATCH_TOKEN``,
    ``BACKWATCH_CONFIG`` …) from ``environ``; returns their names."""
    found = [
        name
        for name in environ
        if (name.startswith("BACKWATCH_") and name not in SUITE_VARIABLES)
        or name.removesuffix("_FILE") in SETTING_VARIABLES
    ]
    for name in found:
        del environ[name]
    return found


def pytest_configure(config: pytest.Config) -> None:
    # before collection: a test module that reads the environment at import sees it clean
    scrub_environment(os.environ)


@pytest.fixture(autouse=True, scope="session")
def _isolated_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs in an empty working directory of its own, with none of the user's
    BACKWATCH_* variables: the ``./backwatch.toml``, ``./data`` (database, token) and
    ``BACKWATCH_URL`` that the README's tour leaves in the checkout are never found, by
    the tests or by the processes they start (they inherit both)."""
    scrub_environment(os.environ)
    before = Path.cwd()
    cwd = tmp_path_factory.mktemp("cwd")
    os.chdir(cwd)
    yield cwd
    os.chdir(before)


@pytest.fixture(autouse=True, scope="session")
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """backwatch's cache (the spool) goes to the test run's own
    directory, not to ~/.cache, where runs of earlier test sessions would be found."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_reachable()


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    need(pg_available, f"PostgreSQL is not reachable at {PG_URL}")
    from sqlalchemy import create_engine, text

    schema = "bwtest_" + secrets.token_hex(6)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a real SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backwatch.db'}"
    return request.getfixturevalue("pg_url")


def make_settings(data_dir: Path, db_url: str | None = None, **env: str):
    from backwatch.settings import load_settings

    values = {"BACKWATCH_DATA_DIR": str(data_dir)}
    if db_url:
        values["BACKWATCH_DATABASE_URL"] = db_url
    values.update(env)
    settings = load_settings(env=values)
    allow_test_client(settings)
    return settings


def allow_test_client(settings):
    """Let the in-process client in: it sends ``Host: testserver``, a name the server does
    not answer unless configured to (``[server] allowed_hosts``, web/hosts.py)."""
    settings.server.allowed_hosts = [*settings.server.allowed_hosts, "testserver"]
    return settings


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, db_url: str):
    return make_settings(tmp_path / "data", db_url)


@pytest.fixture
def hub(settings):
    from backwatch.services.hub import Hub

    h = Hub(settings)
    yield h
    h.close()


@pytest.fixture
def api(settings):
    """An in-process client of the real app (group-commit writer, real database), with the
    first token in ``api.token`` and its header in ``api.auth_headers``."""
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        client.token = settings.token_file.read_text().strip()  # type: ignore[attr-defined]
        client.auth_headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
        yield client


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``probe()``'s first truthy answer, asked every 0.2 s; fails naming ``what`` after
    ``timeout`` seconds (a guard against a hang, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real ``backwatch serve`` process on 127.0.0.1."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BACKWATCH_DATA_DIR": str(data_dir), **(env or {})}
        self.env.pop("BACKWATCH_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 90.0) -> Server:
        # only a guard against a server that never comes up: on a shared VM in a slow
        # stretch, with four test workers starting servers, start-up took over 20 s
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*BACKWATCH, "serve", "--port", str(self.port), "--log-level", "warning"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one run report with the server's token; its acknowledgement (201)."""
        req = urllib.request.Request(
            self.url + "/api/v1/runs",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
            ack: dict[str, Any] = json.loads(resp.read())
        return ack

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``backwatch`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*BACKWATCH, *args],
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
