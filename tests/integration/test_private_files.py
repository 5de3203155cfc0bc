"""The data directory is its owner's alone (issue 14.3): the database holds every ping key
in clear and the token file an admin token, so no other local user may read them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from backwatch.services.hub import Hub
from tests.conftest import Server, make_settings, run_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems have: files 0644, directories 0755 unless made private."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_data_dir_and_database_are_private(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    settings = make_settings(data, db_url)
    with Hub(settings) as hub:
        from backwatch.services.bootstrap import ensure_first_token

        ensure_first_token(hub)
    assert mode(data) == 0o700
    assert mode(data / "token") == 0o600
    if db_url.startswith("sqlite"):
        db = Path(db_url.removeprefix("sqlite:///"))
        assert mode(db) == 0o600
        companions = [p for p in db.parent.iterdir() if p.name.startswith(db.name + "-")]
        assert all(mode(p) == 0o600 for p in companions), companions


def test_serve_tightens_what_it_finds_loose_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Server(data).start()  # makes the database and the token
    first.stop()
    data.chmod(0o755)
    for name in ("backwatch.db", "token"):
        (data / name).chmod(0o644)
    server = Server(data).start()
    try:
        assert mode(data) == 0o700
        assert mode(data / "backwatch.db") == 0o600 and mode(data / "token") == 0o600
        log = server.log.read_text()
        assert f"directory {data} was mode 0755; made it 0700" in log
        assert f"file {data / 'token'} was mode 0644; made it 0600" in log
    finally:
        server.stop()


def test_a_command_opening_the_data_dir_tightens_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "empty.toml").touch()
    env = {k: "" for k in os.environ if k.startswith("BACKWATCH_")}  # not the user's
    env.update(
        BACKWATCH_DATA_DIR=str(data),
        BACKWATCH_SPOOL="0",
        BACKWATCH_CONFIG=str(tmp_path / "empty.toml"),
    )
    proc = run_cli("push", "--job", "docs", "--status", "success", env=env)
    assert proc.returncode == 0, proc.stderr
    assert mode(data) == 0o700 and mode(data / "backwatch.db") == 0o600
    assert "was mode" not in proc.stderr  # created private: nothing to warn about
    data.chmod(0o750)
    (data / "backwatch.db").chmod(0o640)
    proc = run_cli("history", "docs", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "was mode 0750; made it 0700" in proc.stderr
    assert "was mode 0640; made it 0600" in proc.stderr
    assert mode(data) == 0o700 and mode(data / "backwatch.db") == 0o600


def test_spool_entries_are_private(tmp_path: Path) -> None:
    from backwatch import spool

    folder = tmp_path / "spool"
    entry = spool.write_entry(folder, "POST", "/api/v1/runs", {"job": "x", "log": "secret"})
    assert mode(folder) == 0o700 and mode(entry) == 0o600
