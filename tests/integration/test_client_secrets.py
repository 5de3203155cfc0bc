"""Clients and secrets (issue 14.9): a password in ``BACKWATCH_URL`` is never printed, and a
refused token (401/403) is a clear error — not spooled as "server unreachable" and retried
for ever. Real ``backwatch`` commands against a real server."""

from __future__ import annotations

import os
from pathlib import Path

from backwatch import spool
from tests.conftest import Server, free_port, need_tool, run_cli

PASSWORD = "hunter2-in-the-url"


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    # the user's BACKWATCH_* settings blanked (run_cli adds os.environ), no ./backwatch.toml
    env = {k: "" for k in os.environ if k.startswith("BACKWATCH_")}
    (tmp_path / "empty.toml").touch()
    env["BACKWATCH_CONFIG"] = str(tmp_path / "empty.toml")
    env["BACKWATCH_SPOOL_DIR"] = str(tmp_path / "spool")
    env["BACKWATCH_DATA_DIR"] = str(tmp_path / "client-data")
    env.update(more)
    return env


def test_a_url_password_is_never_printed(tmp_path: Path) -> None:
    url = f"http://backwatch:{PASSWORD}@127.0.0.1:{free_port()}"
    env = _env(tmp_path, BACKWATCH_URL=url, BACKWATCH_TOKEN="bw_x")
    push = run_cli("push", "--job", "docs", "--status", "success", env=env)
    assert push.returncode == 0, push.stderr  # spooled: the server is down
    listing = run_cli("history", "docs", env=env)
    assert listing.returncode == 1
    bad = run_cli("push", "--job", "docs", "--url", f"ftp://u:{PASSWORD}@h", env=env)
    web = run_cli("dashboard", "--mode", "web", "--no-browser", env=env)
    assert web.returncode == 0 and "dashboard: http://backwatch:***@127.0.0.1" in web.stdout
    for proc in (push, listing, bad, web):
        assert PASSWORD not in proc.stdout + proc.stderr
    assert "backwatch:***@127.0.0.1" in push.stderr + listing.stderr


def test_a_refused_token_is_an_error_not_a_spooled_report(server: Server, tmp_path: Path) -> None:
    env = _env(tmp_path, BACKWATCH_URL=server.url, BACKWATCH_TOKEN="bw_not-a-real-token")
    proc = run_cli("push", "--job", "docs", "--status", "success", env=env)
    assert proc.returncode == 1
    assert "the server refused the token" in proc.stderr
    assert "spooled" not in proc.stdout + proc.stderr
    assert spool.pending(tmp_path / "spool") == []


def test_reports_spooled_while_down_wait_for_a_good_token(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    env = _env(tmp_path, BACKWATCH_URL=srv.url, BACKWATCH_TOKEN="bw_not-a-real-token")
    down = run_cli("push", "--job", "docs", "--status", "success", env=env)
    assert down.returncode == 0 and "spooled" in down.stdout  # the server is down
    srv.start()
    try:
        # up again, but the token is wrong: an error, the waiting report kept, none added
        proc = run_cli("push", "--job", "docs", "--status", "failed", env=env)
        assert proc.returncode == 1 and "the server refused the token" in proc.stderr
        assert len(spool.pending(tmp_path / "spool")) == 1
        flushed = run_cli("spool", "flush", env=env)
        assert flushed.returncode == 1 and "the server refused the token" in flushed.stderr
        assert len(spool.pending(tmp_path / "spool")) == 1
        assert spool.rejected(tmp_path / "spool") == []
        # with the right token it is delivered
        env["BACKWATCH_TOKEN"] = srv.token
        assert run_cli("spool", "flush", env=env).returncode == 0
        assert spool.pending(tmp_path / "spool") == []
    finally:
        srv.stop()


# --- the shell library (backwatch.sh) ------------------------------------------------------


def _dirs(tmp_path: Path) -> dict[str, Path]:
    return {"metrics": tmp_path / "metrics", "spool": tmp_path / "spool"}


def test_the_shell_library_says_the_token_was_refused(server: Server, tmp_path: Path) -> None:
    from tests.integration.test_shell_lib import SEED000, lib_env, run_bash, spooled

    need_tool("curl")
    dirs = _dirs(tmp_path)
    env = lib_env(dirs, url=server.url, BACKWATCH_TOKEN="bw_not-a-real-token")
    proc = run_bash(SEED000, env)
    assert proc.returncode == 0  # the backup script never fails because of reporting
    assert b"the server refused the token (HTTP 401" in proc.stderr
    assert b"spooled" not in proc.stderr and spooled(dirs) == []


def test_the_shell_library_never_prints_a_url_password(tmp_path: Path) -> None:
    from tests.integration.test_shell_lib import SEED000, lib_env, run_bash, spooled

    need_tool("curl")
    dirs = _dirs(tmp_path)
    url = f"http://backwatch:{PASSWORD}@127.0.0.1:{free_port()}"
    proc = run_bash(SEED000, lib_env(dirs, url=url, BACKWATCH_TOKEN="bw_x"))
    assert proc.returncode == 0
    assert b"cannot reach http://backwatch:***@127.0.0.1" in proc.stderr
    assert PASSWORD.encode() not in proc.stderr
    assert spooled(dirs) and oct(dirs["spool"].stat().st_mode & 0o777) == "0o700"
