"""``backwatch list --url`` against a real ``backwatch serve``: the pages of
``GET /api/v1/jobs``, its filters, ``--all``, and the server's refusals said by option.
The console script runs in a subprocess (``run_cli``), as a user runs it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Server, run_cli
from tests.e2e.test_cli_server import _isolated  # noqa: F401  (autouse fixture)
from tests.integration.test_cli_list import _next

JOBS = [f"srv-{i:02d}" for i in range(9)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = Server(tmp_path_factory.mktemp("list") / "data").start()
    lines = [{"job": j, "status": "failed" if j.endswith("7") else "success"} for j in JOBS]
    body = "\n".join(json.dumps({**line, "started_at": "2026-12-01T02:00:00Z"}) for line in lines)
    result = run_cli("import", "-", "--url", srv.url, "--token", srv.token, input=body)
    assert result.returncode == 0, result.stderr
    yield srv
    srv.stop()


def cli(server: Server, *args: str, code: int = 0) -> Any:
    """``backwatch ARGS --url <server>`` (the token from the environment, as users give it)."""
    env = {"BACKWATCH_TOKEN": server.token, "BACKWATCH_URL": server.url}
    result = run_cli(*args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result


def test_pages_walk_every_job_once_over_http(server: Server) -> None:
    seen: list[str] = []
    args: list[str] | None = ["list", "--limit", "2", "--json"]
    while args is not None:
        result = cli(server, *args)
        seen += [job["id"] for job in json.loads(result.stdout)]
        args = _next(result.stderr)
    assert seen == JOBS

    table = cli(server, "list", "--limit", "4").stdout
    assert "5 more match (9 in all)" in table
    follow = _next(table)
    assert follow is not None and "--url" not in follow  # the URL came from the environment
    assert "srv-04" in cli(server, *follow).stdout


def test_filters_and_all_over_http(server: Server) -> None:
    failing = json.loads(cli(server, "list", "--health", "failing", "--json").stdout)
    assert [job["id"] for job in failing] == ["srv-07"]
    prefixed = json.loads(cli(server, "list", "-q", "srv-0", "--sort", "health", "--json").stdout)
    assert prefixed[0]["id"] == "srv-07" and len(prefixed) == 9
    every = json.loads(cli(server, "list", "--all", "--limit", "2", "--json").stdout)
    assert [job["id"] for job in every] == JOBS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit: must be between 1 and 1000"),
        (["--health", "grand"], "--health: 'grand' is not one of"),
        (["--cursor", "xyz"], "--cursor: 'xyz' is not a next-page cursor for --sort id"),
    ],
)
def test_the_servers_refusals_name_the_option(
    server: Server, args: list[str], message: str
) -> None:
    result = cli(server, "list", *args, code=2)
    assert result.stderr.startswith(f"error: {message}"), result.stderr
