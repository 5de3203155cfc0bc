"""The ``[[jobs]]`` part of the settings: what a job is, how it runs, how it alerts.

Split from settings.py so each reads in one sitting; ``backwatch.settings`` re-exports
every name here, so callers import from there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from backwatch.domain.schedule import parse_schedule
from backwatch.domain.thresholds import SETTINGS as THRESHOLD_SETTINGS
from backwatch.domain.thresholds import Thresholds
from backwatch.errors import ConfigError
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.timeutil import parse_duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- running jobs (backwatch run, the server's scheduler): see docs/runner.md -------------

#: A command: a string runs through ``/bin/sh -c``, a list runs as is (no shell).
Command = str | list[str]


def threshold_fields(*, per_job: bool) -> dict[str, Any]:
    """The alert thresholds a user sets, as pydantic fields, from their one declaration
    (``domain.thresholds``): ``[alerts]`` with the defaults, ``[jobs.alerts]`` optional."""
    types = get_type_hints(Thresholds)
    out: dict[str, Any] = {}
    for name, setting in THRESHOLD_SETTINGS.items():
        if per_job:
            text = f"This job's {name} (default: [alerts] {name})."
            out[name] = (types[name] | None, Field(None, description=text, **setting.bounds()))
        else:
            default = getattr(Thresholds, name)
            text = setting.description + (f" ({setting.unit})" if setting.unit else "")
            out[name] = (types[name], Field(default, description=text, **setting.bounds()))
    return out


_JobThresholds = create_model("_JobThresholds", __base__=_Section, **threshold_fields(per_job=True))


class JobAlertSettings(_JobThresholds):  # type: ignore[misc,valid-type]
    """``[jobs.alerts]``: per-job overrides of ``[alerts]`` and rules switched off."""

    off: list[str] = Field(default_factory=list, description="Rules not evaluated for this job.")

    def overrides(self) -> dict[str, Any]:
        """The thresholds this job sets: name → value."""
        return {k: v for k in THRESHOLD_SETTINGS if (v := getattr(self, k)) is not None}


class MaintenanceWindow(_Section):
    """A recurring window (cron start + duration) in which alerts are not notified."""

    start: str = Field(description="Cron expression of the window's start, e.g. '0 1 * * 0'.")
    duration: str = Field(description="How long the window lasts, e.g. '2h'.")

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        from croniter import croniter  # heavy (see domain/schedule.py): only with a window

        if not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r}")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, field="duration")
        return value


class ResticOptions(_Section):
    """``[jobs.restic]``."""

    repository: str = Field(description="restic repository (path, sftp:, s3:, rest: …).")
    password_file: str | None = Field(None, description="File holding the repository password.")
    password_command: str | None = Field(None, description="Command printing the password.")
    paths: list[str] = Field(default_factory=list, description="What to back up.")
    exclude: list[str] = Field(default_factory=list, description="--exclude patterns.")
    extra_args: list[str] = Field(default_factory=list, description="Added to every command.")
    backup_args: list[str] = Field(default_factory=list, description="Added to `backup` only.")
    binary: str = Field("restic", description="The restic program (name or path).")


class BorgOptions(_Section):
    """``[jobs.borg]``."""

    repository: str = Field(description="borg repository (path or ssh://…).")
    passphrase_file: str | None = Field(None, description="File holding the passphrase.")
    passphrase_command: str | None = Field(None, description="Command printing the passphrase.")
    paths: list[str] = Field(default_factory=list, description="What to back up.")
    exclude: list[str] = Field(default_factory=list, description="--exclude patterns.")
    archive_name: str = Field(
        "{hostname}-{now:%Y-%m-%dT%H:%M:%S}", description="Archive name (borg placeholders)."
    )
    compression: str | None = Field(None, description="e.g. 'zstd,3'.")
    extra_args: list[str] = Field(default_factory=list, description="Added to every command.")
    create_args: list[str] = Field(default_factory=list, description="Added to `create` only.")
    compact: bool = Field(True, description="Run `borg compact` after `borg prune`.")
    binary: str = Field("borg", description="The borg program (name or path).")


class RsyncOptions(_Section):
    """``[jobs.rsync]``."""

    paths: list[str] = Field(description="Sources (a trailing '/' copies the contents).")
    destination: str = Field(description="Target directory or host:path.")
    exclude: list[str] = Field(default_factory=list, description="--exclude patterns.")
    delete: bool = Field(False, description="--delete: remove files gone from the source.")
    extra_args: list[str] = Field(default_factory=list, description="Added to the command.")
    binary: str = Field("rsync", description="The rsync program (name or path).")


class BuiltinOptions(_Section):
    """``[jobs.builtin]``: the built-in snapshot engine (docs/engine.md); it writes to the
    job's ``destinations``."""

    paths: list[str] = Field(default_factory=list, description="Directories to back up.")
    exclude: list[str] = Field(default_factory=list, description="Name or path patterns.")
    checksum: bool = Field(False, description="Compare content, not size + mtime + inode.")
    compression_level: int = Field(3, ge=1, le=22, description="zstd level.")


class CommandPhase(_Section):
    """One named step of a ``tool = "command"`` job."""

    name: str = Field(description="Phase name shown on the run, e.g. 'archive'.")
    command: Command = Field(description="String (through /bin/sh -c) or list of arguments.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PHASE_RE.match(value):
            raise ValueError(PHASE_PROBLEM)
        return value


class HookSettings(_Section):
    """``[jobs.hooks]``: commands around a run."""

    before: list[Command] = Field(default_factory=list, description="Before the first step.")
    after: list[Command] = Field(default_factory=list, description="After a good run.")
    failure: list[Command] = Field(default_factory=list, description="After a failed run.")


class DumpSettings(_Section):
    """``[[jobs.dumps]]``: a database or command dump, streamed to a file before the backup."""

    name: str = Field(description="Names the dump phase ('dump-<name>') and its file.")
    type: Literal["postgresql", "mongodb", "sqlite", "command"] = Field(
        description="pg_dump, mongodump --archive, sqlite3 .backup, or any command."
    )
    database: str | None = Field(
        None, description="postgresql: URL/conninfo/name; mongodb: URI; sqlite: the file."
    )
    command: Command | None = Field(None, description="type = 'command': prints the dump.")
    path: str | None = Field(None, description="Dump file; default <data>/dumps/<job>/<name>.")
    extra_args: list[str] = Field(default_factory=list, description="Added to the dump command.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PHASE_RE.match(value):
            raise ValueError(PHASE_PROBLEM)
        return value


class RetentionSettings(_Section):
    """``[jobs.retention]``: restic forget --prune, borg prune + compact."""

    keep_last: int | None = Field(None, ge=0, description="Keep the N newest snapshots.")
    keep_hourly: int | None = Field(
        None, ge=0, description="Keep the newest of each of the last N hours."
    )
    keep_daily: int | None = Field(
        None, ge=0, description="Keep the newest of each of the last N days."
    )
    keep_weekly: int | None = Field(
        None, ge=0, description="Keep the newest of each of the last N weeks."
    )
    keep_monthly: int | None = Field(
        None, ge=0, description="Keep the newest of each of the last N months."
    )
    keep_yearly: int | None = Field(
        None, ge=0, description="Keep the newest of each of the last N years."
    )
    keep_within: str | None = Field(
        None, description="Keep all within this of the newest snapshot, e.g. '7d'."
    )

    @field_validator("keep_within")
    @classmethod
    def _within(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(\d+[yYmwdhH])+", value):
            raise ValueError(f"not a period such as '7d', '2w' or '1y6m': {value!r}")
        return value


class VerifySettings(_Section):
    """``[jobs.verify]``: restic check, borg check."""

    read_data_subset: str | None = Field(
        None,
        description="restic --read-data-subset (e.g. '5%'); borg: any value adds --verify-data.",
    )
    extra_args: list[str] = Field(default_factory=list, description="Added to the check.")


def check_duration(value: str | None) -> str | None:
    """A duration setting ('90s', '1h', '7d'), checked; ValueError says what is wrong."""
    if value is not None:
        parse_duration(value)
    return value


def check_schedule(value: str | None) -> str | None:
    """A schedule setting (cron expression or period), checked."""
    if value is not None:
        parse_schedule(value, "UTC")
    return value


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}  # fmt: skip


def parse_size(value: object, *, field: str = "size") -> int:
    """'200MB', '1.5GiB', '4096' or a number → bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    found = _SIZE_RE.match(str(value)) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{field} must be a size such as '200MB', '1GiB' or a number of bytes")
    unit = found.group(2).lower().removesuffix("b")
    return round(float(found.group(1)) * _SIZE_UNITS[unit])


class DrillSettings(_Section):
    """``[jobs.drill]``: restore drills that prove the backup comes back (docs/drills.md)."""

    schedule: str | None = Field(
        None,
        description="When the server drills the job (cron or period); default weekly ('7d') "
        "for jobs the server runs, none otherwise. 'off' turns scheduled drills off.",
    )
    files: int = Field(20, ge=1, le=10_000, description="Files restored per drill.")
    max_bytes: str | int | None = Field(
        None, description="At most this much restored per drill, e.g. '200MB'."
    )
    paths: list[str] = Field(
        default_factory=list, description="Paths (in the snapshot) every drill restores."
    )
    timeout: str | None = Field(None, description="Give up after this long, e.g. '1h'.")
    max_age: str = Field(
        "14d", description="A warning opens when no drill has passed for this long."
    )
    command: Command | None = Field(
        None, description="tool = 'command' jobs: a drill command; its exit code decides."
    )

    @field_validator("max_bytes")
    @classmethod
    def _size(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_size(value, field="max_bytes")
        return value

    _duration = field_validator("timeout", "max_age")(lambda cls, v: check_duration(v))
    _schedule = field_validator("schedule")(lambda cls, v: v if v == "off" else check_schedule(v))

    def max_bytes_value(self) -> int | None:
        return None if self.max_bytes is None else parse_size(self.max_bytes, field="max_bytes")


class RunnerSettings(_Section):
    """``[runner]``: how many runs at once on this host."""

    max_concurrent: int = Field(3, ge=1, description="Runs at once; more wait as 'queued'.")


@dataclass(frozen=True)
class Tool:
    """What ``tool = "<name>"`` brings: its options table and what a run of it can do."""

    #: its ``[jobs.<name>]`` table (None: it has none)
    options: type[_Section] | None
    #: it applies ``[jobs.retention]`` (a prune step) and ``[jobs.verify]`` (a check step)
    prunes_and_checks: bool = False
    #: a drill restores its backups itself (a command job needs a ``[jobs.drill]`` command)
    drills: bool = True


#: the tools a job can run: runners/ registers one runner for each name (and no other)
TOOLS: dict[str, Tool] = {
    "restic": Tool(ResticOptions, prunes_and_checks=True),
    "borg": Tool(BorgOptions, prunes_and_checks=True),
    "rsync": Tool(RsyncOptions),
    "builtin": Tool(BuiltinOptions, prunes_and_checks=True),
    "command": Tool(None, drills=False),
}


def tool_list(names: list[str] | None = None, conjunction: str = "or") -> str:
    """'restic, borg, rsync, builtin or command': the tools (or ``names``) for a message."""
    names = list(TOOLS) if names is None else names
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}" if len(names) > 1 else names[0]


#: the tools that apply a retention and verify their backups
PRUNING_TOOLS = [name for name, tool in TOOLS.items() if tool.prunes_and_checks]
#: tools whose backups a drill restores itself (a command job needs a [jobs.drill] command)
DRILL_TOOLS = tuple(name for name, tool in TOOLS.items() if tool.drills)

PHASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PHASE_PROBLEM = "must be a name of letters, digits, '.', '_' or '-' (at most 64 characters)"
RUN_ACTIONS = ("dump", "backup", "prune", "check")


#: a job's display name, shown on pages and in notifications beside its id
NAME_MAX = 120


class JobSettings(BaseModel):
    """One ``[[jobs]]`` table. An unknown key is an error, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The job's slug: [a-z0-9][a-z0-9._-]{0,63}.")
    name: str = Field(
        "", description="A display name for people, any characters (the id stays the slug)."
    )
    description: str = Field("", description="What the job backs up, for people.")
    host: str | None = Field(None, description="The host the job runs on.")
    backup_path: str | None = Field(None, description="What it backs up (shown only).")
    tool: str | None = Field(None, description=f"{tool_list()} (the runner's tool).")
    schedule: str | None = Field(None, description="Cron expression or a period such as '24h'.")
    timezone: str = Field("UTC", description="The schedule's time zone, e.g. 'Europe/Berlin'.")
    grace: str = Field("1h", description="How late a run may start before it is missed.")
    timeout: str | None = Field(None, description="A run longer than this is stuck (killed).")
    tags: list[str] = Field(default_factory=list, description="Labels to group and filter by.")
    paused: bool = Field(False, description="No alerts and no scheduled runs while paused.")
    destinations: list[str] = Field(
        default_factory=list, description="Where backups go (disk checks; builtin writes here)."
    )
    alerts: JobAlertSettings = Field(default_factory=JobAlertSettings)
    depends_on: list[str] = Field(default_factory=list, description="Parent jobs.")
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    # running the job (docs/runner.md)
    restic: ResticOptions | None = None
    borg: BorgOptions | None = None
    rsync: RsyncOptions | None = None
    builtin: BuiltinOptions | None = None
    command: Command | None = Field(None, description="tool = 'command': the backup command.")
    phases: list[CommandPhase] = Field(default_factory=list, description="Named commands.")
    hooks: HookSettings = Field(default_factory=HookSettings)
    dumps: list[DumpSettings] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    retention: RetentionSettings | None = None
    verify: VerifySettings | None = None
    drill: DrillSettings | None = None
    actions: list[Literal["dump", "backup", "prune", "check"]] | None = Field(
        None, description="Steps this job runs; default: all that are configured."
    )
    run_by: Literal["server", "external"] = Field(
        "external", description="'server': the server's scheduler runs it on its schedule."
    )
    after: list[str] = Field(default_factory=list, description="Run when these jobs succeed.")
    when_disk_above: float | None = Field(
        None, gt=0, le=1, description="Run when a destination's disk is fuller than this."
    )
    concurrency_group: str | None = Field(None, description="Jobs sharing it never overlap.")
    on_busy: Literal["wait", "refuse"] = Field(
        "wait", description="When the job is already running: wait (queued) or refuse."
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not JOB_ID_RE.match(value):
            raise ValueError(JOB_ID_PROBLEM)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())  # one line: no tabs, newlines or runs of spaces
        if len(value) > NAME_MAX:
            raise ValueError(f"must be at most {NAME_MAX} characters")
        if not value.isprintable():
            raise ValueError("must be printable text (no control characters)")
        return value

    _duration = field_validator("grace", "timeout")(lambda cls, v: check_duration(v))
    _schedule = field_validator("schedule")(lambda cls, v: check_schedule(v))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def builtin_problem(job: JobSettings) -> str | None:
    """Why ``job`` keeps no snapshots with the built-in engine, or None when it does."""
    if job.tool != "builtin" or job.builtin is None:
        return (
            f"job {job.id!r} uses tool {job.tool or 'none'!r}, not the built-in engine "
            "(set tool = 'builtin' and add a [jobs.builtin] table with its paths)"
        )
    if not job.destinations:
        return f"job {job.id!r} has no destinations (destinations = ['/mnt/backup'])"
    return None


def _check_job_references(jobs: Sequence[JobSettings], source: str) -> None:
    """Cross-field checks of the file's ``jobs``: parents that exist, rule names that exist."""
    ids = {job.id for job in jobs}
    for i, job in enumerate(jobs):
        for parent in job.depends_on:
            if parent not in ids or parent == job.id:
                raise ConfigError(
                    f"{source}: at 'jobs[{i}].depends_on': {parent!r} is not another job "
                    "declared in this file"
                )
        if not job.alerts.off:
            continue
        # the alert rules and their statistics: only a job that turns rules off needs them
        # here, and backwatch run reads the settings before its tool starts
        from backwatch.domain.rules import RULES

        for name in job.alerts.off:
            if name not in RULES:
                raise ConfigError(
                    f"{source}: at 'jobs[{i}].alerts.off': unknown rule {name!r}; "
                    f"rules: {', '.join(sorted(RULES))}"
                )


#: tool → the section it needs
_TOOL_SECTIONS = {name: name for name, tool in TOOLS.items() if tool.options is not None}


def _check_runnable_jobs(jobs: Sequence[JobSettings], source: str) -> None:
    """Cross-field checks of what ``backwatch run`` needs: a tool's section, triggers."""
    ids = {job.id for job in jobs}
    for i, job in enumerate(jobs):
        at = f"{source}: at 'jobs[{i}]"
        section = _TOOL_SECTIONS.get(job.tool or "")
        if section and getattr(job, section) is None:
            raise ConfigError(
                f"{at}.{section}': required for tool = {job.tool!r} (add a [jobs.{section}] table)"
            )
        for other in _TOOL_SECTIONS.values():
            if other != section and getattr(job, other) is not None:
                raise ConfigError(
                    f"{at}.{other}': only for tool = {other!r} (this job's tool is {job.tool!r})"
                )
        if job.command is not None and job.phases:
            raise ConfigError(f"{at}.phases': give either 'command' or 'phases', not both")
        if (job.command is not None or job.phases) and job.tool not in (None, "command"):
            key = "command" if job.command is not None else "phases"
            raise ConfigError(f"{at}.{key}': only for tool = 'command' (not {job.tool!r})")
        if job.tool == "command" and job.command is None and not job.phases and not job.dumps:
            raise ConfigError(
                f"{at}.command': required for tool = 'command' (or give 'phases' or 'dumps')"
            )
        pruning = tool_list(PRUNING_TOOLS, "and")
        if job.retention is not None and job.tool not in PRUNING_TOOLS:
            raise ConfigError(f"{at}.retention': only {pruning} jobs apply a retention")
        if job.verify is not None and job.tool not in PRUNING_TOOLS:
            raise ConfigError(f"{at}.verify': only {pruning} jobs verify their backups")
        for j, dump in enumerate(job.dumps):
            if dump.type == "command" and dump.command is None:
                raise ConfigError(f"{at}.dumps[{j}].command': required for type = 'command'")
            if dump.type != "command" and not dump.database:
                raise ConfigError(f"{at}.dumps[{j}].database': required for type = {dump.type!r}")
        for parent in job.after:
            if parent not in ids or parent == job.id:
                raise ConfigError(
                    f"{at}.after': {parent!r} is not another job declared in this file"
                )
        cycle = _after_cycle(jobs, job.id)
        if cycle:
            raise ConfigError(f"{at}.after': the jobs run each other in a loop: {cycle}")
        triggered = job.schedule is not None or job.after or job.when_disk_above is not None
        if job.run_by == "server" and not triggered:
            raise ConfigError(
                f"{at}.run_by': 'server' needs a 'schedule', 'after' or 'when_disk_above'"
            )


def _after_cycle(jobs: Sequence[JobSettings], start: str) -> str | None:
    """'a → b → a' when following ``after`` from ``start`` leads back to it."""
    parents = {job.id: job.after for job in jobs}
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for parent in parents.get(node, []):
            if parent == start:
                return " → ".join([*path, parent])
            if parent not in path:
                stack.append((parent, [*path, parent]))
    return None


#: how often the server drills the jobs it runs, when [jobs.drill] schedule does not say
DEFAULT_DRILL_EVERY = "7d"


def drillable(job: JobSettings) -> bool:
    """Whether a restore drill can prove ``job``'s backups (docs/drills.md)."""
    command = job.drill is not None and job.drill.command is not None
    return job.tool in DRILL_TOOLS or (job.tool == "command" and command)


def drill_schedule(job: JobSettings) -> str | None:
    """When the server drills ``job``: ``[jobs.drill] schedule``, else weekly for the
    drillable jobs it runs; None when never (``"off"``, paused, not drillable)."""
    if job.paused or not drillable(job):
        return None
    wanted = job.drill.schedule if job.drill is not None else None
    if wanted == "off":
        return None
    return wanted or (DEFAULT_DRILL_EVERY if job.run_by == "server" else None)


def drill_max_age(job: JobSettings) -> float | None:
    """How long ``job`` may go without a passed drill: ``[jobs.drill] max_age`` for jobs
    with a ``[jobs.drill]`` table (drilled by the server or by cron), or the default for
    the drillable jobs the server runs; None when it is not drilled."""
    if job.drill is not None:
        return parse_duration(job.drill.max_age)
    if job.run_by == "server" and drillable(job):
        return parse_duration(DrillSettings.model_fields["max_age"].default)
    return None
