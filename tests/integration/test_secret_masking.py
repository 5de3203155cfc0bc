"""No secret reaches a stranger (issues 13.10, 14.4, 14.7): what ``wrap``, ``import``,
``push --log``, pings and the runner store, and what the API and pages show anonymous
readers, has every secret masked — in the database itself, not only on the way out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import need_tool, run_cli
from tests.integration.runner_support import run_job, write_config

ENV_SECRET = "tok-3f9a8c7e-env-secret"
URL_PASSWORD = "dbpass-7781"


def _raw(db_url: str, sql: str) -> str:
    """Everything a query finds, as one text: what is really stored."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return "\n".join(str(row) for row in conn.execute(text(sql)))
    finally:
        engine.dispose()


def _stored(db_url: str) -> str:
    return _raw(db_url, "SELECT message FROM runs") + _raw(db_url, "SELECT log FROM run_logs")


def _env(tmp_path: Path) -> dict[str, str]:
    # the user's BACKWATCH_* settings blanked (run_cli adds os.environ), no ./backwatch.toml
    env = {k: "" for k in os.environ if k.startswith("BACKWATCH_")}
    (tmp_path / "empty.toml").touch()
    env["BACKWATCH_CONFIG"] = str(tmp_path / "empty.toml")
    env["BACKWATCH_DATA_DIR"] = str(tmp_path / "data")
    env["BACKWATCH_SPOOL"] = "0"
    env["MY_SERVICE_TOKEN"] = ENV_SECRET
    return env


# --- clients: wrap, import, push --log (13.10) -------------------------------------------


def test_wrap_stores_the_output_with_secrets_masked(tmp_path: Path, db_url: str) -> None:
    script = (
        'echo "token is $MY_SERVICE_TOKEN"; '
        f'echo "dumping postgresql://app:{URL_PASSWORD}@db/app" >&2; exit 3'
    )
    proc = run_cli("wrap", "nightly", "--db", db_url, "--", "sh", "-c", script, env=_env(tmp_path))
    assert proc.returncode == 3, proc.stderr
    assert ENV_SECRET in proc.stdout  # the terminal sees the command's own output
    stored = _stored(db_url)
    assert "token is ***" in stored and "postgresql://app:***@db/app" in stored
    assert ENV_SECRET not in stored and URL_PASSWORD not in stored


def test_import_stores_texts_with_secrets_masked(tmp_path: Path, db_url: str) -> None:
    need_tool("rsync")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_text("a")
    out = subprocess.run(
        ["rsync", "-a", "--stats", f"{src}/", str(dst)], capture_output=True, text=True, check=True
    ).stdout
    output = tmp_path / "rsync.out"
    output.write_text(
        f"connecting to rsync://backup:{URL_PASSWORD}@nas/module\nusing token {ENV_SECRET}\n{out}"
    )
    proc = run_cli(
        "import", str(output), "--format", "rsync", "--job", "mirror", "--db", db_url,
        env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = tmp_path / "runs.jsonl"
    lines.write_text(
        '{"job": "db", "status": "failed", "started_at": "2026-12-01T02:00:00Z", '
        f'"message": "cannot reach mysql://root:{URL_PASSWORD}@db", '
        f'"log": "MY_SERVICE_TOKEN={ENV_SECRET}"}}\n'
    )
    proc = run_cli("import", str(lines), "--db", db_url, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    stored = _stored(db_url)
    assert "rsync://backup:***@nas/module" in stored and "mysql://root:***@db" in stored
    assert ENV_SECRET not in stored and URL_PASSWORD not in stored


def test_push_log_is_stored_with_secrets_masked(tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "backup.log"
    log.write_text(f"exporting with {ENV_SECRET}\nsftp://me:{URL_PASSWORD}@host/x\n")
    proc = run_cli(
        "push", "--job", "docs", "--status", "success", "--log-file", str(log), "--db", db_url,
        env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stored = _stored(db_url)
    assert "exporting with ***" in stored
    assert ENV_SECRET not in stored and URL_PASSWORD not in stored


# --- ping keys (14.4) ----------------------------------------------------------------------


def _ping_key(api: Any, job: str) -> str:
    resp = api.get(f"/api/v1/jobs/{job}", headers=api.auth_headers)
    return urlsplit(resp.json()["ping_url"]).path.rsplit("/", 1)[-1]


def _keys(api: Any) -> tuple[str, str, str]:
    for job in ("alpha", "beta"):
        report = {"job": job, "status": "success", "started_at": "2026-12-01T02:00:00Z"}
        assert api.post("/api/v1/runs", json=report, headers=api.auth_headers).status_code == 201
    project = api.get("/api/v1/ping-key", headers=api.auth_headers).json()["ping_key"]
    return _ping_key(api, "alpha"), _ping_key(api, "beta"), project


def test_no_ping_key_reaches_an_anonymous_reader(api: Any, settings: Any) -> None:
    own, other, project = _keys(api)
    body = (
        f"curl https://hub/ping/{other}/start\n"
        f"curl https://hub/ping/{project}/gamma?create=1\nown: /ping/{own}/log\n"
    )
    # a /log ping with no open run: kept as a log event, shown at /api/v1/events?kind=log
    assert api.post(f"/ping/{own}/log", content=body).text == "OK"
    # a start and a finish ping: the bodies become the run's log
    assert api.post(f"/ping/{own}/start", content=body).text == "OK"
    assert api.post(f"/ping/{own}/1", content=f"failed; next try {other}").text == "OK"
    # a report over the API that quotes keys in its message and log
    report = {
        "job": "beta",
        "status": "failed",
        "started_at": "2026-12-02T02:00:00Z",
        "message": f"ping /ping/{project}/beta failed",
        "log": body,
    }
    created = api.post("/api/v1/runs", json=report, headers=api.auth_headers)
    assert created.status_code == 201

    shown = [api.get("/api/v1/events", params={"kind": "log"}).text]
    runs = api.get("/api/v1/runs").json()["items"]
    for run in runs:
        shown.append(api.get(f"/api/v1/runs/{run['id']}").text)
        shown.append(api.get(f"/runs/{run['id']}").text)
    shown.append(api.get("/api/v1/runs").text)
    everything = "\n".join(shown)
    assert "/ping/<ping-key>/start" in everything and "next try &lt;ping-key&gt;" in everything
    stored = _stored(settings.db_url) + _raw(settings.db_url, "SELECT detail FROM events")
    for key in (own, other, project):
        assert key not in everything
        assert key not in stored


def test_a_word_shaped_like_a_key_is_not_masked(api: Any) -> None:
    _keys(api)
    word = "IMG_20240101_123456789"  # 22 characters, as a ping key
    report = {
        "job": "alpha",
        "status": "success",
        "started_at": "2026-12-03T02:00:00Z",
        "log": f"/srv/photos/{word}.jpg",
    }
    run = api.post("/api/v1/runs", json=report, headers=api.auth_headers).json()
    assert f"/srv/photos/{word}.jpg" in api.get(f"/api/v1/runs/{run['id']}").json()["log"]


def test_ping_keys_have_the_shape_the_masking_looks_for() -> None:
    from backwatch.masking import ping_key_candidates
    from backwatch.services.jobs import new_ping_key

    for _ in range(50):
        key = new_ping_key()
        assert ping_key_candidates(f"/ping/{key}/start") == {key}


# --- password commands (14.7) -------------------------------------------------------------


@pytest.fixture
def restic_repo(tmp_path: Path) -> tuple[Path, str]:
    need_tool("restic")
    secret_cmd = "echo correct-horse-battery-staple"
    env = {**os.environ, "RESTIC_PASSWORD": "correct-horse-battery-staple"}
    subprocess.run(
        ["restic", "init", "--repo", str(tmp_path / "repo")], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp_path, secret_cmd


def test_a_password_command_is_masked_in_dry_run_and_log(restic_repo: tuple[Path, str]) -> None:
    root, secret_cmd = restic_repo
    tree = root / "tree"
    tree.mkdir()
    (tree / "f.txt").write_text("x")
    config = write_config(
        root / "bw.toml",
        root / "data",
        f"""
[[jobs]]
id = "photos"
tool = "restic"
env = {{RESTIC_CACHE_DIR = "{root / "cache"}"}}
[jobs.restic]
repository = "{root / "repo"}"
password_command = "{secret_cmd}"
paths = ["{tree}"]
""",
    )
    proc, out = run_job(config, "photos", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert out is not None
    listing = "\n".join(out["commands"])
    assert "--password-command" in listing and "correct-horse" not in listing
    proc, run = run_job(config, "photos")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success"
    db = f"sqlite:///{root / 'data' / 'backwatch.db'}"
    stored = _stored(db)
    assert "--password-command" in stored and "correct-horse" not in stored


def test_a_failing_borg_passphrase_command_is_masked(tmp_path: Path) -> None:
    need_tool("borg")
    env = {**os.environ, "BORG_PASSPHRASE": "right-one"}
    subprocess.run(
        ["borg", "init", "-e", "repokey", str(tmp_path / "repo")], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.txt").write_text("x")
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "home"
tool = "borg"
[jobs.borg]
repository = "{tmp_path / "repo"}"
passphrase_command = "false vault-read borg/home-secret"
paths = ["{tree}"]
""",
    )
    proc, run = run_job(config, "home", env={"BORG_BASE_DIR": str(tmp_path / "borg")})
    assert run is not None and run["status"] == "failed"
    stored = _stored(f"sqlite:///{tmp_path / 'data' / 'backwatch.db'}")
    assert "passcommand" in stored.lower()  # borg said what failed …
    assert "home-secret" not in stored and "home-secret" not in proc.stdout  # … not the command


def test_configured_secrets_are_masked_in_what_any_client_reports(
    tmp_path: Path, db_url: str
) -> None:
    """A job's env values and password command are known to the server: a report from a
    host whose environment does not hold them is masked too."""
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app
    from tests.conftest import make_settings

    config = tmp_path / "backwatch.toml"
    config.write_text(
        '[[jobs]]\nid = "photos"\ntool = "restic"\n'
        'env = {B2_ACCOUNT_KEY = "b2-key-0042-configured"}\n'
        '[jobs.restic]\nrepository = "b2:bucket:photos"\n'
        'password_command = "vault-cli get restic/photos-pw"\npaths = ["/srv/photos"]\n'
    )
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    with TestClient(create_app(settings)) as client:
        token = settings.token_file.read_text().strip()
        report = {
            "job": "photos",
            "status": "failed",
            "started_at": "2026-12-01T02:00:00Z",
            "message": "b2: key b2-key-0042-configured refused",
            "log": "+ restic --password-command 'vault-cli get restic/photos-pw' backup",
        }
        created = client.post(
            "/api/v1/runs", json=report, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201
        shown = client.get(f"/api/v1/runs/{created.json()['id']}").json()
    assert shown["message"] == "b2: key *** refused"
    stored = _stored(settings.db_url)
    for secret in ("b2-key-0042-configured", "photos-pw"):
        assert secret not in stored and secret not in str(shown)


def test_a_key_stored_by_an_older_version_is_masked_when_shown(api: Any, settings: Any) -> None:
    _own, other, project = _keys(api)
    engine = create_engine(settings.db_url)
    try:
        with engine.begin() as conn:  # as an older version stored it: unmasked
            conn.execute(
                text("UPDATE runs SET message = :m WHERE job = 'alpha'"),
                {"m": f"pinged /ping/{other} and /ping/{project}/x"},
            )
    finally:
        engine.dispose()
    [run] = api.get("/api/v1/runs", params={"job": "alpha"}).json()["items"]
    shown = [
        api.get("/api/v1/runs", params={"job": "alpha"}).text,
        api.get(f"/api/v1/runs/{run['id']}").text,
        api.get(f"/runs/{run['id']}").text,
        api.get("/jobs/alpha").text,
    ]
    assert run["message"] == "pinged /ping/<ping-key> and /ping/<ping-key>/x"
    for page in shown:
        assert other not in page and project not in page
