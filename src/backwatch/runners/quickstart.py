"""Quick start: a run's first command started before the settings are read, when they are
the settings a run of the job has read and checked before.

``backwatch run JOB`` spent most of its own time before the tool started in reading
``backwatch.toml`` through the typed settings: importing pydantic and building its models
takes a slow machine a third of a second, 15 % of a 2 s restic backup. Yet everything that
decides a job's command is known before any of that: the config file's bytes, the
environment variables backwatch reads, the working directory, the host, the user, the
command line's options and this version of backwatch. Once a run has read and checked the
settings, the command of its first step is kept under a key made of all of those
(``Plan.remember``). The next run with the same key takes the run's locks and starts that
command at once (``Plan.start``), then reads the settings while it works, at the lowest CPU
priority: the tool comes first.

The run itself does not change: the runner builds its steps from the settings as always and
adopts the running command only when its first step is that command, with the same
arguments and environment (``QuickStart.adopt``); what the command printed meanwhile waits
in its pipes (64 KB each: restic's status lines fill them in minutes, borg's file list may
make borg wait until the settings are read, as it would have waited to start). Otherwise
(a change the key did not catch) it stops the command, its whole process group, before it
runs its own, and an error in the settings stops it the same way. Only the backup of
restic, borg, rsync and the built-in engine starts early: tools that leave their repository
consistent when stopped. A job whose first step is a hook or a dump, or whose locks live in
PostgreSQL, never does.

The entries live in ``$XDG_CACHE_HOME/backwatch/quickstart/`` (``~/.cache/…``), readable by
their owner only, as a job's ``env`` may hold secrets. Deleting them costs the next run its
quick start, nothing else; ``BACKWATCH_QUICK_START=0`` turns it off. This module is
imported before the settings: it loads only the standard library until a run is started.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable

from backwatch import __version__

TYPE_CHECKING = False  # not typing's: `backwatch run` starts its tool before typing loads
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from backwatch.runners.engine import JobRunner
    from backwatch.runners.spawn import Started
    from backwatch.services.locks import Held, Holder

    T = TypeVar("T")

#: bump when the entry's meaning changes: older entries are then never used
FORMAT = 1
#: tools whose backup may be started early: stopped, they leave the repository consistent
TOOLS = ("restic", "borg", "rsync", "builtin")
#: variables besides BACKWATCH_* that settings or steps read: a change misses the entry
ENVIRONMENT = ("HOME", "RETENTION_DAYS")


def quick_start_enabled() -> bool:
    """Unless ``BACKWATCH_QUICK_START=0``: every run reads its settings first, and no entry
    is kept (for a machine where a backup must never start before its settings are read)."""
    value = os.environ.get("BACKWATCH_QUICK_START", "1").strip().lower()
    return value not in ("0", "no", "false", "off")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "backwatch", "quickstart")


def _environment() -> dict[str, str]:
    """The variables the settings and the steps are built from. Not the whole environment:
    systemd gives every start of a unit its own ``INVOCATION_ID``, a shell its own ``_``;
    what the command inherits from the rest is the same either way (it is started with
    this process's environment, as the runner would start it)."""
    return {
        key: value
        for key, value in os.environ.items()
        if key.startswith("BACKWATCH_") or key in ENVIRONMENT
    }


def config_file(config: str | None) -> str | None:
    """The config file ``load_settings`` reads (``--config``, ``BACKWATCH_CONFIG`` or
    ``./backwatch.toml``), absolute; None when there is none."""
    path = config or os.environ.get("BACKWATCH_CONFIG") or "backwatch.toml"
    return os.path.abspath(path) if os.path.isfile(path) else None


class Plan:
    """The key of one ``backwatch run JOB`` and the entry a run with the same key left.

    ``options``: the command line's options that decide how the run is made (its database,
    its server), as given.
    """

    def __init__(self, job: str, config: str | None, options: dict[str, str | None]) -> None:
        self.job = job
        self.key: str | None = None
        self.path: str | None = None
        self.loaded: dict[str, Any] | None = None
        #: locks left by dead processes that the quick start took over (their notes are
        #: gone): the run reports them, whether or not it starts early
        self.stale: list[Holder] = []
        path = config_file(config)
        if path is None:
            return
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return
        digest = hashlib.blake2b(digest_size=20)
        parts = (
            str(FORMAT),
            __version__,
            job,
            path,
            os.getcwd(),
            os.uname().nodename,
            str(os.geteuid()),
            json.dumps(options, sort_keys=True),
            sys.executable,
            json.dumps(sorted(_environment().items())),
        )
        for part in parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(data)
        self.key = digest.hexdigest()
        name = hashlib.blake2b(f"{path}\0{job}".encode("utf-8", "surrogateescape"), digest_size=12)
        self.path = os.path.join(cache_dir(), f"{name.hexdigest()}.json")

    def _load(self) -> dict[str, Any] | None:
        if self.key is None or self.path is None:
            return None
        try:
            with open(self.path, "rb") as file:
                entry = json.loads(file.read())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != self.key or not _well_formed(entry):
            return None
        self.loaded = entry
        return entry

    def start(self, run_id: str) -> QuickStart | None:
        """Take the run's locks and start its first command, when a run with this key left
        them and the locks are free now; None otherwise (the run then waits for its locks,
        or refuses, as it always does). None when quick starts are turned off."""
        entry = self._load() if quick_start_enabled() else None
        if entry is None:
            return None
        from backwatch.runners.spawn import spawn
        from backwatch.services.locks import Locks

        locks = Locks(
            entry["data_dir"],
            max_concurrent=entry["max_concurrent"],
            on_stale=self.stale.append,
        )
        try:
            held = locks.try_once(entry["locks"], note={"job": self.job, "run_id": run_id})
        except OSError:
            return None
        if held is None:
            return None
        env = {**os.environ, **entry["env"]}
        try:
            started = spawn(entry["argv"], env)
        except OSError:
            held.release()
            return None
        return QuickStart(entry, env, held, started)

    def remember(self, entry: dict[str, Any] | None) -> None:
        """Keep ``entry`` (see ``entry_for``) for the next run with this key; None, or quick
        starts turned off, forgets the one kept. A cache: what cannot be written is left
        unwritten."""
        if self.key is None or self.path is None:
            return
        if entry is None or not quick_start_enabled():
            self.forget()
            return
        entry = {"key": self.key, **entry}
        if entry == self.loaded:
            return
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(entry, file)
            os.replace(temporary, self.path)
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass

    def forget(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _well_formed(entry: dict[str, Any]) -> bool:
    def strings(value: object) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    env = entry.get("env")
    return (
        strings(entry.get("argv"))
        and bool(entry["argv"])
        and strings(entry.get("locks"))
        and isinstance(entry.get("data_dir"), str)
        and isinstance(entry.get("max_concurrent"), int)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    )


def entry_for(runner: JobRunner, *, data_dir: str, max_concurrent: int) -> dict[str, Any] | None:
    """What a quick start of the next run of ``runner``'s job needs, or None when its runs
    may not start early (see the module's text). Call it with the run's file locks only:
    PostgreSQL's advisory locks are not taken before the settings are read."""
    from backwatch.runners.base import BACKUP
    from backwatch.runners.plan import lock_names

    job = runner.job
    first = runner.steps[0] if runner.steps else None
    if job.tool not in TOOLS or first is None or first.kind != BACKUP:
        return None
    if first.stdout_path is not None:
        return None
    return {
        "job": job.id,
        "argv": list(first.argv),
        "env": {**job.env, **first.env},
        "locks": sorted(set(lock_names(runner.ctx))),
        "data_dir": data_dir,
        "max_concurrent": max_concurrent,
    }


class QuickStart:
    """The locks and the first command of a run, taken and started before its settings were
    read. The runner claims the locks and adopts the command, or they are given back and
    stopped (``discard``)."""

    def __init__(
        self,
        entry: dict[str, Any],
        env: dict[str, str],
        held: Held,
        started: Started,
    ) -> None:
        self.entry = entry
        self.env = env
        self.held: Held | None = held
        self.started: Started | None = started
        self.monotonic = started.monotonic
        self.at = started.at

    def claim(self, names: list[str]) -> Held | None:
        """The run's locks, when they are the ones taken; otherwise nothing is held and the
        command is stopped (None)."""
        if self.held is not None and sorted(set(names)) == self.entry["locks"]:
            held, self.held = self.held, None
            return held
        self.discard()
        return None

    def adopt(self, argv: list[str], env: dict[str, str]) -> Started | None:
        """The running command, when it is the one the run's first step starts (the same
        arguments and environment); otherwise it is stopped (None). Once only."""
        started, self.started = self.started, None
        if started is not None and argv == self.entry["argv"] and env == self.env:
            return started
        if started is not None:
            _stop(started)
        return None

    def discard(self) -> bool:
        """Stop the command unless it was adopted, give back the locks unless they were
        claimed. True when a command had to be stopped."""
        started, self.started = self.started, None
        if started is not None:
            _stop(started)
        if self.held is not None:
            self.held.release()
            self.held = None
        return started is not None


def _stop(started: Started) -> None:
    """Its whole process group: SIGTERM, then SIGKILL if it lingers."""
    from backwatch.runners.process import kill_group

    kill_group(started.proc)
    for stream in (started.proc.stdout, started.proc.stderr):
        if stream is not None:
            stream.close()


def at_low_priority(work: Callable[[], T]) -> T:
    """``work()`` on a thread at the lowest CPU priority, waited for: the settings read while
    the tool runs must not take the cores it needs. On Linux a thread's priority is its
    own: the caller's thread, which starts the run's other commands, keeps the normal one."""
    from backwatch.runners.record import yield_cpu

    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        yield_cpu()
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="settings", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
