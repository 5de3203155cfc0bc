"""Database and command dumps, each its own ``dump-<name>`` phase before the backup.

pg_dump and mongodump ``--archive`` and any command print the dump on stdout: it streams
into ``<path>.partial``, renamed to ``<path>`` only when the command succeeded, so a failed
dump never replaces the last good one. ``sqlite3 .backup`` writes the file itself (it
copies a consistent snapshot of a live database).
"""

from __future__ import annotations

from backwatch.runners.base import DUMP, RunContext, Step, by_exit_code, shell_argv
from backwatch.settings import DumpSettings


def _libpq(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` → what libpq understands."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def dump_step(ctx: RunContext, dump: DumpSettings) -> Step:
    path = ctx.dump_file(dump)
    phase = f"dump-{dump.name}"
    if dump.type == "postgresql":
        assert dump.database
        argv = ["pg_dump", "--no-password", *dump.extra_args, "--dbname", _libpq(dump.database)]
        return Step(phase, DUMP, argv, by_exit_code("pg_dump"), stdout_path=path)
    if dump.type == "mongodb":
        assert dump.database
        argv = ["mongodump", "--archive", f"--uri={dump.database}", *dump.extra_args]
        return Step(phase, DUMP, argv, by_exit_code("mongodump"), stdout_path=path)
    if dump.type == "sqlite":
        assert dump.database
        target = str(path).replace("'", "''")
        argv = ["sqlite3", *dump.extra_args, dump.database, f".backup '{target}'"]
        return Step(phase, DUMP, argv, by_exit_code("sqlite3"), writes_path=path)
    assert dump.command is not None
    argv = [*shell_argv(dump.command), *dump.extra_args]
    return Step(phase, DUMP, argv, by_exit_code("the dump command"), stdout_path=path)
