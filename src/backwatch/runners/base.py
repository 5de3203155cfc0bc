"""What tool runners produce and share: steps, outcomes, the context of one run."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from backwatch.domain.lifecycle import RunStatus
from backwatch.settings import Command, DumpSettings, JobSettings, Settings

#: step kinds, in the order a run takes them
HOOK, DUMP, BACKUP, PRUNE, CHECK = "hook", "dump", "backup", "prune", "check"


@dataclass
class Outcome:
    """What a finished step means: its status and, when not plain success, why."""

    status: RunStatus
    message: str = ""


#: exit code, the step's kept output → what it means
Interpret = Callable[[int, str], Outcome]


def by_exit_code(tool: str, warning_codes: tuple[int, ...] = ()) -> Interpret:
    """0 success, ``warning_codes`` warning, anything else failed (with the output's last
    line, which is where tools put the reason)."""

    def interpret(code: int, output: str) -> Outcome:
        if code == 0:
            return Outcome(RunStatus.SUCCESS)
        last = last_line(output)
        reason = f": {last}" if last else ""
        if code in warning_codes:
            return Outcome(RunStatus.WARNING, f"{tool} exited with code {code} (warning){reason}")
        return Outcome(RunStatus.FAILED, f"{tool} exited with code {code}{reason}")

    return interpret


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


@dataclass
class Step:
    """One command of a run, recorded as one phase."""

    phase: str
    kind: str
    argv: list[str]
    interpret: Interpret
    env: dict[str, str] = field(default_factory=dict)
    #: dumps: the command's stdout streams into this file (written atomically)
    stdout_path: Path | None = None
    #: dumps written by the command itself (sqlite3 .backup): checked to exist afterwards
    writes_path: Path | None = None
    #: the tool output format (ingest/tools) that gives the run its figures
    parse_as: str | None = None
    #: which progress parser reads the step's output lines
    progress: str | None = None
    #: failure hooks run after a failed step; everything else stops there
    on_failure: bool = False
    #: a failed verification marks the run's stats["verify"] = "failed"
    verifies: bool = False

    def shell_line(self) -> str:
        return shlex.join(self.argv)


#: the file suffix of each dump type (runners/dumps.py builds the dump steps)
_DUMP_SUFFIX = {
    "postgresql": ".sql",
    "mongodb": ".archive",
    "sqlite": ".sqlite3",
    "command": ".dump",
}


@dataclass
class RunContext:
    """What every tool needs to build its steps."""

    settings: Settings
    job: JobSettings
    hostname: str = field(default_factory=socket.gethostname)

    @property
    def dump_dir(self) -> Path:
        return (self.settings.data_dir / "dumps" / self.job.id).resolve()

    def dump_file(self, dump: DumpSettings) -> Path:
        """Where ``dump`` is written: its ``path``, else ``<data>/dumps/<job>/<name><suffix>``."""
        if dump.path:
            return Path(dump.path).expanduser().resolve()
        return self.dump_dir / f"{dump.name}{_DUMP_SUFFIX[dump.type]}"

    def dump_paths(self) -> list[str]:
        """Files the job's dumps write: restic and borg back them up with the paths."""
        return [str(self.dump_file(d)) for d in self.job.dumps]


class ToolRunner(Protocol):
    """One tool: its name and how its actions become steps."""

    name: str
    #: actions this tool can take beyond hooks and dumps
    actions: tuple[str, ...]

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        """The steps of ``actions`` (backup, prune, check) for this job, in order."""
        ...

    def repository(self, job: JobSettings) -> str | None:
        """What a backup and a prune of this job must never share at once (lock key)."""
        ...

    def disk_paths(self, job: JobSettings) -> list[str]:
        """Local paths whose disk fills as this job writes (``when_disk_above``)."""
        ...


def shell_argv(command: Command) -> list[str]:
    """A string runs through /bin/sh -c; a list runs as is."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return list(command)


def local_path(location: str) -> str | None:
    """The local directory of a repository or destination, None when it is remote."""
    if "://" in location:
        return None
    if ":" in location.split("/", 1)[0]:  # host:path (rsync, sftp:, s3:, rest: …)
        return None
    return os.path.abspath(location)
