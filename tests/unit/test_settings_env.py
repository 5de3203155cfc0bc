"""Every backwatch.toml key by environment variable, ``*_FILE`` for secrets, and ``TZ``."""

from __future__ import annotations

from pathlib import Path

import pytest

from backwatch.errors import ConfigError
from backwatch.settings import FileSettings, load_settings
from backwatch.settings_env import variables


def _load(tmp_path: Path, **env: str):
    return load_settings(env={"BACKWATCH_DATA_DIR": str(tmp_path), **env})


def _leaf_paths(model, prefix=()):  # type: ignore[no-untyped-def]
    from backwatch.settings_env import _is_structured, _model_of

    for name, field in model.model_fields.items():
        table = _model_of(field.annotation)
        if table is not None and not _is_structured(field.annotation):
            yield from _leaf_paths(table, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_key_has_a_variable_by_the_rule() -> None:
    found = variables(FileSettings)
    assert sorted(found.values()) == sorted(_leaf_paths(FileSettings))
    for variable, path in found.items():
        assert variable == "BACKWATCH_" + "__".join(k.upper() for k in path)


def test_scalars_lists_and_tables_by_variable(tmp_path: Path) -> None:
    s = _load(
        tmp_path,
        BACKWATCH_SERVER__PORT="6001",
        BACKWATCH_SERVER__BASE_URL="https://backups.example.org",
        BACKWATCH_SERVER__ALLOWED_HOSTS="nas.lan, *.example.com",
        BACKWATCH_SERVER__ACCESS_LOG="true",
        BACKWATCH_AUTH__READ="token",
        BACKWATCH_ALERTS__STUCK_MINUTES="30",
        BACKWATCH_RUNNER__MAX_CONCURRENT="2",
        BACKWATCH_RETENTION_DAYS="30",
        BACKWATCH_LOG_FORMAT="json",
        BACKWATCH_NOTIFY='[{urls = ["json://127.0.0.1:9/hook"], severities = ["critical"]}]',
        BACKWATCH_JOBS='[{id = "photos", schedule = "0 2 * * *", grace = "2h"}]',
    )
    assert s.server.port == 6001 and s.server.base_url == "https://backups.example.org"
    assert s.server.allowed_hosts == ["nas.lan", "*.example.com"]
    assert s.server.access_log is True and s.server.log_format == "json"
    assert s.auth.read == "token" and s.alerts.stuck_minutes == 30
    assert s.runner.max_concurrent == 2 and s.retention_days == 30
    assert s.notify[0].urls == ["json://127.0.0.1:9/hook"]
    assert s.notify[0].severities == ["critical"]
    assert s.jobs[0].id == "photos" and s.jobs[0].grace == "2h"


def test_a_variable_beats_the_file_but_keeps_its_other_keys(tmp_path: Path) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text('[server]\nport = 5002\nbase_url = "http://a:5002"\n')
    s = load_settings(config, env={"BACKWATCH_SERVER__PORT": "5003"})
    assert s.server.port == 5003 and s.server.base_url == "http://a:5002"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKWATCH_SERVER__PROT": "1"}, "BACKWATCH_SERVER__PROT: [server] has no key 'prot'"),
        ({"BACKWATCH_SERVER__PORT": "http"}, "environment variable BACKWATCH_SERVER__PORT:"),
        ({"BACKWATCH_AUTH__READ": "maybe"}, "environment variable BACKWATCH_AUTH__READ:"),
        ({"BACKWATCH_NOTIFY": "[{"}, "BACKWATCH_NOTIFY: not a TOML value"),
        (
            {"BACKWATCH_JOBS": '[{id = "a", grace = "soon"}]'},
            "environment variable BACKWATCH_JOBS: at 'jobs[0].grace'",
        ),
    ],
)
def test_a_bad_variable_is_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, **env)
    assert message in caught.value.message


def test_secrets_from_files(tmp_path: Path) -> None:
    url_file = tmp_path / "db_url"
    url_file.write_text(f"sqlite:///{tmp_path / 'other.db'}\n")
    notify_file = tmp_path / "notify"
    notify_file.write_text('[{urls = ["mailto://u:secret@mail.example"]}]\n')
    s = _load(
        tmp_path,
        BACKWATCH_DATABASE_URL_FILE=str(url_file),
        BACKWATCH_NOTIFY_FILE=str(notify_file),
    )
    assert s.db_url == f"sqlite:///{tmp_path / 'other.db'}"  # the newline is stripped
    assert s.notify[0].urls == ["mailto://u:secret@mail.example"]


def test_a_missing_secret_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, BACKWATCH_DATABASE_URL_FILE=str(missing))
    assert caught.value.message == (
        f"environment variable BACKWATCH_DATABASE_URL_FILE: no such file: {missing}"
    )


def test_both_a_variable_and_its_file_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("x")
    with pytest.raises(ConfigError, match="BACKWATCH_TOKEN and BACKWATCH_TOKEN_FILE"):
        _load(tmp_path, BACKWATCH_TOKEN="y", BACKWATCH_TOKEN_FILE=str(secret))


def test_tz_is_the_default_zone_of_configured_jobs(tmp_path: Path) -> None:
    jobs = '[{id = "a", schedule = "0 2 * * *"}, {id = "b", timezone = "Asia/Tokyo"}]'
    s = _load(tmp_path, TZ="Europe/Berlin", BACKWATCH_JOBS=jobs)
    assert [j.timezone for j in s.jobs] == ["Europe/Berlin", "Asia/Tokyo"]
    assert _load(tmp_path, BACKWATCH_JOBS=jobs).jobs[0].timezone == "UTC"
    assert _load(tmp_path, TZ=":/etc/localtime", BACKWATCH_JOBS=jobs).jobs[0].timezone == "UTC"


def test_an_unknown_tz_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable TZ: unknown time zone"):
        _load(tmp_path, TZ="Mars/Olympus")
