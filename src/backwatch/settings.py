"""Typed settings: the TOML file plus environment overrides, each option declared once.

Precedence (highest first): command-line flags (applied by the CLI), environment variables,
the config file, the defaults declared here. Errors name the file, the key path and what was
expected: ``backwatch.toml: at 'jobs[2].grace': not a duration: 'soon'``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, create_model, field_validator

from backwatch.errors import ConfigError
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.job_settings import *  # noqa: F403 - the job settings are part of this API
from backwatch.job_settings import (
    JobSettings,
    RunnerSettings,
    _check_job_references,
    _check_runnable_jobs,
    _Section,
    threshold_fields,
)
from backwatch.settings_env import apply_environment, environment_time_zone
from backwatch.timeutil import parse_duration


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address to bind; 127.0.0.1 keeps it local.")
    port: int = Field(5001, ge=1, le=65535, description="TCP port of the dashboard and API.")
    base_url: str | None = Field(
        None, description="Public URL used in links and snippets, e.g. http://backup-host:5001."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted, in bytes."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host names the server answers besides IP addresses, localhost, the bound "
            "address and base_url's host (DNS rebinding defence); '*.example.com' for "
            "subdomains, ['*'] to switch the check off."
        ),
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="'json': every log line on stderr is a JSON object (logs.py)."
    )
    access_log: bool = Field(False, description="Log every HTTP request (ping keys hidden).")
    leader_lease_seconds: float = Field(
        60,
        ge=5,
        le=3600,
        description=(
            "PostgreSQL, several instances: a leader that has not renewed its lease for this "
            "long (hung, frozen) is replaced by another instance."
        ),
    )


class AuthSettings(_Section):
    read: Literal["open", "token"] = Field(
        "open", description="'open': anyone who reaches the server may read; 'token': reads too."
    )
    proxy_header: str | None = Field(
        None,
        description=(
            "Header set by a trusted reverse proxy with the signed-in user's name (e.g. "
            "'X-Forwarded-User'); dashboard viewers with it act as admins. Set it only when "
            "the server is reachable through that proxy alone."
        ),
    )


_AlertThresholds = create_model(
    "_AlertThresholds", __base__=_Section, **threshold_fields(per_job=False)
)


class AlertSettings(_AlertThresholds):  # type: ignore[misc,valid-type]
    """``[alerts]``: the rules' thresholds (declared in ``domain.thresholds``) and how
    alerts are checked and re-notified."""

    data_min_free_mb: float = Field(
        64,
        ge=0,
        description="The data directory's disk is full (critical, not ready) below this.",
    )
    renotify: str = Field("24h", description="Re-notify open, unacknowledged alerts this often.")
    tick_seconds: float = Field(30, ge=1, description="How often time-based rules run.")

    @field_validator("renotify")
    @classmethod
    def _renotify(cls, value: str) -> str:
        parse_duration(value, field="renotify")
        return value


class NotifySettings(_Section):
    urls: list[str] = Field(default_factory=list, description="Apprise URLs.")
    severities: list[Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: ["warning", "critical"],
        description="Alert severities these URLs are told of.",
    )
    jobs: list[str] = Field(default_factory=list, description="Only these jobs (empty: all).")
    events: list[Literal["open", "resolve"]] = Field(
        default_factory=lambda: ["open", "resolve"],
        description="Notify when an alert opens, when it resolves, or both.",
    )


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


class MetricsSettings(_Section):
    per_job_limit: int = Field(
        10_000,
        ge=0,
        description=(
            "Above this many jobs, /metrics keeps per-job series only for jobs with a problem "
            "(failing, missed, stuck, unknown, late); the per-health and per-tag counts "
            "always cover every job. ?jobs=all asks for every job's series."
        ),
    )


class FileSettings(_Section):
    """The whole ``backwatch.toml``."""

    data_dir: str | None = Field(None, description="Where the database, token and files live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data.")
    retention_days: int = Field(90, ge=1, description="Raw runs older than this are pruned.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    notify: list[NotifySettings] = Field(default_factory=list)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
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
        self.metrics = file.metrics
        self.notify = file.notify
        self.runner = file.runner
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


def _variable_of(loc: str, from_env: dict[str, str]) -> str | None:
    for key, variable in from_env.items():
        if loc.startswith((f"{key}[", f"{key}.")):
            return variable
    return None


def format_validation_error(
    exc: ValidationError, source: str, from_env: dict[str, str] | None = None
) -> str:
    """One line per problem: ``<file>: at '<key path>': <problem>``. A key set by an
    environment variable names the variable instead of the file."""
    from_env = from_env or {}
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/configuration.md)"
        loc = _format_loc(err["loc"])
        if loc in from_env:
            lines.append(f"environment variable {from_env[loc]}: {msg}")
        elif variable := _variable_of(loc, from_env):  # in a list or table set as a whole
            lines.append(f"environment variable {variable}: at '{loc}': {msg}")
        else:
            lines.append(f"{source}: at '{loc}': {msg}")
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
    from_env = apply_environment(raw, FileSettings, env)  # settings_env.py: the rule
    environment_time_zone(raw, env)
    try:
        file = FileSettings.model_validate(raw)
    except ValidationError as exc:
        message = format_validation_error(exc, str(path or "environment"), from_env)
        raise ConfigError(message) from None
    seen: dict[str, int] = {}
    for index, job in enumerate(file.jobs):
        if job.id in seen:
            raise ConfigError(
                f"{path}: at 'jobs[{index}].id': duplicate job id {job.id!r} "
                f"(already used by jobs[{seen[job.id]}])"
            )
        seen[job.id] = index
    _check_job_references(file.jobs, str(path or "environment"))
    _check_runnable_jobs(file.jobs, str(path or "environment"))
    return Settings(file, config_path=path)
