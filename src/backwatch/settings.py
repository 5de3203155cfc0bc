"""Typed settings: the TOML file plus environment overrides, each option declared once.

Precedence (highest first): command-line flags (applied by the CLI), environment variables,
the config file, the defaults declared here. Errors name the file, the key path and what was
expected: ``backwatch.toml: at 'jobs[2].grace': not a duration: 'soon'``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backwatch.errors import ConfigError
from backwatch.timeutil import parse_duration

JOB_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
JOB_ID_PROBLEM = (
    "must be a slug: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit, at most 64 characters"
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address to bind; 127.0.0.1 keeps it local.")
    port: int = Field(5001, ge=1, le=65535, description="TCP port of the dashboard and API.")
    base_url: str | None = Field(
        None, description="Public URL used in links and snippets, e.g. http://backup-host:5001."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted, in bytes."
    )


class AuthSettings(_Section):
    read: Literal["open", "token"] = Field(
        "open", description="'open': anyone who reaches the server may read; 'token': reads too."
    )


class AlertSettings(_Section):
    stuck_minutes: float = Field(15, gt=0, description="A run is stuck after this long.")
    regression_percent: float = Field(20, gt=0, description="Duration regression threshold.")
    error_rate_percent: float = Field(5, gt=0, description="Failure share over 7 days.")
    disk_warning_percent: float = Field(85, gt=0, le=100)
    disk_critical_percent: float = Field(95, gt=0, le=100)
    renotify: str = Field("24h", description="Re-notify open, unacknowledged alerts this often.")


class NotifySettings(_Section):
    urls: list[str] = Field(default_factory=list, description="Apprise URLs.")
    severities: list[Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: ["warning", "critical"]
    )
    jobs: list[str] = Field(default_factory=list, description="Only these jobs (empty: all).")
    events: list[Literal["open", "resolve"]] = Field(default_factory=lambda: ["open", "resolve"])


class IngestSettings(_Section):
    default_job: str = Field(
        "backup", description="Job of seed 001 JSONL records that name no 'job'."
    )
    jsonl_files: list[str] = Field(default_factory=list, description="Extra JSONL files to tail.")
    status_dirs: list[str] = Field(
        default_factory=list, description="Directories of *_status.json files to watch."
    )

    @field_validator("default_job")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not JOB_ID_RE.match(value):
            raise ValueError(JOB_ID_PROBLEM)
        return value


class JobSettings(BaseModel):
    """One ``[[jobs]]`` table. Tool sections (``[jobs.restic]`` …) are kept as given."""

    model_config = ConfigDict(extra="allow")

    id: str
    description: str = ""
    host: str | None = None
    backup_path: str | None = None
    tool: str | None = None
    schedule: str | None = Field(None, description="Cron expression or a period such as '24h'.")
    timezone: str = "UTC"
    grace: str = "1h"
    timeout: str | None = None
    tags: list[str] = Field(default_factory=list)
    paused: bool = False
    destinations: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not JOB_ID_RE.match(value):
            raise ValueError(JOB_ID_PROBLEM)
        return value

    @field_validator("grace", "timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from backwatch.domain.schedule import parse_schedule

            parse_schedule(value, "UTC")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class FileSettings(_Section):
    """The whole ``backwatch.toml``."""

    data_dir: str | None = Field(None, description="Where the database, token and files live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data.")
    retention_days: int = Field(90, ge=1, description="Raw runs older than this are pruned.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    notify: list[NotifySettings] = Field(default_factory=list)
    jobs: list[JobSettings] = Field(default_factory=list)


class Settings:
    """Everything a process needs, resolved: file + environment + explicit overrides."""

    def __init__(self, file: FileSettings, *, config_path: Path | None = None) -> None:
        self.file = file
        self.config_path = config_path
        self.data_dir = Path(file.data_dir or "./data")
        self.database_url = file.database_url
        self.retention_days = file.retention_days
        self.server = file.server
        self.auth = file.auth
        self.alerts = file.alerts
        self.ingest = file.ingest
        self.notify = file.notify
        self.jobs = file.jobs

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'backwatch.db').resolve()}"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "token"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some top-level values replaced (CLI flags)."""
        clone = Settings(self.file, config_path=self.config_path)
        for key, value in changes.items():
            if value is not None:
                setattr(clone, key, value)
        return clone


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/configuration.md)"
        lines.append(f"{source}: at '{_format_loc(err['loc'])}': {msg}")
    return "\n".join(lines)


def load_settings(config: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the config file (``--config``, ``BACKWATCH_CONFIG`` or ``./backwatch.toml`` if it
    exists) and apply the environment overrides."""
    env = dict(os.environ if env is None else env)
    path: Path | None = None
    explicit = config or env.get("BACKWATCH_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
    elif Path("backwatch.toml").is_file():
        path = Path("backwatch.toml")
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    if env.get("BACKWATCH_DATA_DIR"):
        raw["data_dir"] = env["BACKWATCH_DATA_DIR"]
    if env.get("BACKWATCH_DATABASE_URL"):
        raw["database_url"] = env["BACKWATCH_DATABASE_URL"]
    if env.get("RETENTION_DAYS"):
        raw["retention_days"] = env["RETENTION_DAYS"]
    try:
        file = FileSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path or "environment"))) from None
    ids = [job.id for job in file.jobs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{path}: at 'jobs': duplicate job id {dupes[0]!r}")
    return Settings(file, config_path=path)
