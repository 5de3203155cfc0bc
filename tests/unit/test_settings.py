"""backwatch.toml plus environment overrides; every error names the file and the key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from backwatch.errors import ConfigError
from backwatch.settings import load_settings

SPEC_EXAMPLE = """
[server]
port = 5001
base_url = "http://backup-host:5001"

[alerts]
stuck_minutes = 15
regression_percent = 20

[[notify]]
urls = ["ntfy://ntfy.example/backups"]
severities = ["warning", "critical"]

[[jobs]]
id = "photos"
description = "Photo library to the NAS"
schedule = "0 2 * * *"
timezone = "Europe/Berlin"
grace = "1h"
timeout = "6h"
tool = "restic"
destinations = ["/mnt/nas"]
[jobs.restic]
repository = "/mnt/nas/restic"
password_file = "/etc/backwatch/restic.pass"
paths = ["/srv/photos"]
exclude = ["*.tmp"]
[jobs.retention]
keep_daily = 7
keep_weekly = 4

[[jobs]]
id = "db-dump"
schedule = "24h"
"""


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never pick up a backwatch.toml from the repository."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "backwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def section(job, name: str) -> dict:
    """A ``[jobs.<name>]`` table as a dict, whether it is typed or kept as given."""
    value = getattr(job, name, None)
    if value is None:
        value = (job.model_extra or {}).get(name)
    return value.model_dump() if hasattr(value, "model_dump") else value


def config_error(path: Path | None = None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env or {})
    return err.value.message


def test_defaults_without_a_file():
    settings = load_settings(env={})
    assert settings.config_path is None
    assert settings.data_dir == Path("data")
    assert settings.retention_days == 90
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 5001
    assert settings.db_url == f"sqlite:///{(Path('data') / 'backwatch.db').resolve()}"
    assert settings.jobs == []


def test_the_spec_example_loads(tmp_path):
    settings = load_settings(write(tmp_path, SPEC_EXAMPLE), env={})
    assert settings.server.base_url == "http://backup-host:5001"
    assert settings.notify[0].urls == ["ntfy://ntfy.example/backups"]
    photos, dump = settings.jobs
    assert photos.id == "photos"
    assert photos.timezone == "Europe/Berlin"
    assert photos.grace == "1h"
    # tool sections reach the runner as written
    assert section(photos, "restic")["repository"] == "/mnt/nas/restic"
    assert section(photos, "restic")["exclude"] == ["*.tmp"]
    assert section(photos, "retention")["keep_daily"] == 7
    assert section(photos, "retention")["keep_weekly"] == 4
    assert dump.schedule == "24h"
    assert dump.grace == "1h"


def test_default_file_in_the_working_directory(tmp_path):
    write(tmp_path, "retention_days = 30\n")
    settings = load_settings(env={})
    assert settings.retention_days == 30
    assert settings.config_path == Path("backwatch.toml")


def test_config_from_the_environment(tmp_path):
    path = write(tmp_path, "retention_days = 12\n", name="other.toml")
    assert load_settings(env={"BACKWATCH_CONFIG": str(path)}).retention_days == 12


def test_environment_overrides_the_file(tmp_path):
    path = write(
        tmp_path,
        """
        data_dir = "/srv/from-file"
        database_url = "sqlite:////srv/from-file/db"
        retention_days = 10
        """,
    )
    settings = load_settings(
        path,
        env={
            "BACKWATCH_DATA_DIR": str(tmp_path / "d"),
            "BACKWATCH_DATABASE_URL": "postgresql+psycopg://u@localhost/bw",
            "RETENTION_DAYS": "45",
        },
    )
    assert settings.data_dir == tmp_path / "d"
    assert settings.db_url == "postgresql+psycopg://u@localhost/bw"
    assert settings.retention_days == 45


def test_overrides_keep_the_rest(tmp_path):
    settings = load_settings(write(tmp_path, SPEC_EXAMPLE), env={})
    clone = settings.with_overrides(data_dir=tmp_path / "x", retention_days=None)
    assert clone.data_dir == tmp_path / "x"
    assert clone.retention_days == 90
    assert clone.jobs == settings.jobs


def test_missing_file(tmp_path):
    message = config_error(tmp_path / "nope.toml")
    assert "config file not found" in message
    assert "nope.toml" in message


def test_not_toml(tmp_path):
    path = write(tmp_path, "[server\nport = 1\n")
    message = config_error(path)
    assert str(path) in message
    assert "not valid TOML" in message


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[[jobs]]\nid = "a"\n[[jobs]]\nid = "b"\ngrace = "soon"\n', "jobs[1].grace", "soon"),
        ('[[jobs]]\nid = "a"\ntimeout = "-1h"\n', "jobs[0].timeout", "not a duration"),
        ('[[jobs]]\nid = "Bad Name"\n', "jobs[0].id", "slug"),
        ('[[jobs]]\nid = "a"\ntimezone = "Mars/Olympus"\n', "jobs[0].timezone", "Mars/Olympus"),
        ('[[jobs]]\nid = "a"\nschedule = "0 25 * * *"\n', "jobs[0].schedule", "cron"),
        ('[[jobs]]\nid = "a"\nschedule = "whenever"\n', "jobs[0].schedule", "whenever"),
        ('[[jobs]]\ndescription = "no id"\n', "jobs[0].id", "required"),
        ("[server]\nport = 70000\n", "server.port", "65535"),
        ('[server]\nport = "http"\n', "server.port", "integer"),
        ("retention_days = 0\n", "retention_days", "greater than or equal to 1"),
        ('[[notify]]\nseverities = ["loud"]\n', "notify[0].severities[0]", "warning"),
        ('[ingest]\ndefault_job = "My Job"\n', "ingest.default_job", "slug"),
        ('[auth]\nread = "maybe"\n', "auth.read", "open"),
    ],
)
def test_errors_name_the_file_and_the_key_path(tmp_path, text, key, words):
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: at '{key}': ")
    assert words in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("retention_dayz = 3\n", "retention_dayz"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[alerts]\nstuck_minute = 3\n", "alerts.stuck_minute"),
        ("[servers]\nport = 1\n", "servers"),
    ],
)
def test_unknown_keys_are_refused(tmp_path, text, key):
    path = write(tmp_path, text)
    message = config_error(path)
    assert f"at '{key}': unknown key" in message


def test_duplicate_job_ids(tmp_path):
    path = write(tmp_path, '[[jobs]]\nid = "nas"\n[[jobs]]\nid = "web"\n[[jobs]]\nid = "nas"\n')
    message = config_error(path)
    assert str(path) in message
    assert "duplicate job id 'nas'" in message
    assert "jobs[2]" in message


def test_every_error_is_listed(tmp_path):
    path = write(tmp_path, '[server]\nport = 0\n[[jobs]]\nid = "a"\ngrace = "x"\n')
    message = config_error(path)
    assert "server.port" in message
    assert "jobs[0].grace" in message


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_bad_environment_values_name_the_variable(tmp_path, value):
    path = write(tmp_path, "retention_days = 30\n")
    message = config_error(path, env={"RETENTION_DAYS": value})
    assert "RETENTION_DAYS" in message
    assert str(path) not in message  # the file is fine; the environment is not
