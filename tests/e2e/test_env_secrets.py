"""``*_FILE`` variables for the command line's own secrets (``BACKWATCH_TOKEN_FILE``)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Server, run_cli


def test_push_reads_its_token_from_a_file(server: Server, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(server.token + "\n")
    env = {"BACKWATCH_URL": server.url, "BACKWATCH_TOKEN_FILE": str(secret)}
    result = run_cli("push", "--job", "from-file", "--status", "success", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = run_cli("list", "--json", env={"BACKWATCH_URL": server.url}, cwd=tmp_path)
    assert "from-file" in listed.stdout


def test_a_missing_token_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env = {"BACKWATCH_URL": "http://127.0.0.1:9", "BACKWATCH_TOKEN_FILE": str(missing)}
    result = run_cli("push", "--job", "x", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr
        == f"error: environment variable BACKWATCH_TOKEN_FILE: no such file: {missing}\n"
    )


def test_the_database_url_from_a_file_serves_every_command(tmp_path: Path) -> None:
    secret = tmp_path / "database-url"
    secret.write_text(f"sqlite:///{tmp_path / 'elsewhere.db'}\n")
    env = {"BACKWATCH_DATA_DIR": str(tmp_path / "data"), "BACKWATCH_DATABASE_URL_FILE": str(secret)}
    result = run_cli("db", "migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere.db").is_file()
    result = run_cli("push", "--job", "filed", "--status", "success", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = run_cli("list", "--json", env=env, cwd=tmp_path)
    assert "filed" in listed.stdout
