"""The command line against a real ``backwatch serve`` with scoped tokens (issue 14): a
host's limited ingest token reports its own jobs with ``push``, ``wrap`` and ``import``
and is refused for others (an error, never spooled); ``alerts snooze`` needs operate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Server, run_cli


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))


def _token(server: Server, *args: str) -> str:
    made = run_cli("token", "create", *args, "--data-dir", str(server.data_dir))
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[-1]


def test_a_limited_token_from_the_command_line(server: Server, tmp_path: Path) -> None:
    limited = _token(server, "--name", "web1", "--jobs", "web-*", "--hosts", "web1")
    env = {"BACKWATCH_URL": server.url, "BACKWATCH_TOKEN": limited,
           "BACKWATCH_DATA_DIR": str(tmp_path / "cli")}  # fmt: skip

    ok = run_cli("push", "--job", "web-site", "--status", "success", "--host", "web1", env=env)
    assert ok.returncode == 0, ok.stderr
    for args in (
        ["push", "--job", "mail", "--status", "success", "--host", "web1"],
        ["push", "--job", "web-site", "--status", "success", "--host", "db1"],
    ):
        refused = run_cli(*args, env=env)
        assert refused.returncode == 1, refused.stderr
        assert "may report only" in refused.stderr, refused.stderr
    lines = tmp_path / "runs.jsonl"
    lines.write_text(
        json.dumps({"job": "web-site", "status": "success", "host": "web1",
                    "started_at": "2026-05-01T02:00:00Z"}) + "\n"
        + json.dumps({"job": "mail", "status": "success", "host": "web1",
                      "started_at": "2026-05-01T02:00:00Z"}) + "\n"
    )  # fmt: skip
    imported = run_cli("import", str(lines), env=env)
    assert "may report only for jobs matching 'web-*', not for job 'mail'" in imported.stderr

    spooled = run_cli("spool", "list", "--json", env=env)
    assert spooled.returncode == 0 and json.loads(spooled.stdout)["pending"] == [], spooled.stdout
    admin = {**env, "BACKWATCH_TOKEN": server.token}
    listed = run_cli("list", "--json", env=admin)
    assert listed.returncode == 0, listed.stderr
    jobs = {j["id"] for j in json.loads(listed.stdout)}
    assert "mail" not in jobs and "web-site" in jobs

    snooze = run_cli("alerts", "snooze", "web-site", "--for", "36500d", env=env)
    assert snooze.returncode == 1 and "needs 'operate'" in snooze.stderr, snooze.stderr
    oncall = {**env, "BACKWATCH_TOKEN": _token(server, "--name", "oncall", "--scope", "operate")}
    snooze = run_cli("alerts", "snooze", "web-site", "--for", "2h", env=oncall)
    assert snooze.returncode == 0, snooze.stderr
