"""Apply Alembic migrations programmatically (``serve`` on start, ``backwatch db migrate``).

Alembic is imported inside the functions that use it: its imports are slow, and every
command that opens the database checks the schema here first (``HEAD_REVISION``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from backwatch.errors import StoreUnavailable
from backwatch.store.connect import make_engine, unavailable
from backwatch.store.dialect import lock_for_transaction

_INI = Path(__file__).with_name("alembic.ini")
#: The newest revision in migrations/versions. Knowing it lets every command skip Alembic
#: (half a second of imports) when the schema is already current; a test keeps it true.
HEAD_REVISION = "0015"


def _config(connection: object) -> object:
    from alembic.config import Config

    cfg = Config(str(_INI))
    cfg.set_main_option("script_location", str(_INI.parent / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _config(None)
    head = ScriptDirectory.from_config(cfg).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None (empty database, no version table)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, DBAPIError):
        return None


def _revision_on(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _refuse_unknown(stored: str | None) -> None:
    """A revision this backwatch does not know was written by a newer one: say so, rather
    than fail inside Alembic (docs/deploy.md, "Upgrades and migrations")."""
    if stored is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(_config(None)).get_revision(stored)  # type: ignore[arg-type]
    except (CommandError, RevisionError):
        raise StoreUnavailable(
            f"the database's schema is at revision {stored}, newer than this backwatch "
            f"knows (its newest is {HEAD_REVISION}): a newer version upgraded it; run that "
            "version, or restore the backup taken before the upgrade"
        ) from None


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns it. Safe to call every start."""
    stored = stored_revision(engine)
    if stored == HEAD_REVISION:
        return HEAD_REVISION
    _refuse_unknown(stored)
    from alembic import command

    try:
        with engine.begin() as conn:
            # instances starting together: one migrates, the others wait and find it done
            lock_for_transaction(conn, "backwatch-migrate")
            tables = set(inspect(conn).get_table_names())
            if "alembic_version" in tables and _revision_on(conn) == HEAD_REVISION:
                return HEAD_REVISION
            if tables and "alembic_version" not in tables and "runs" in tables:
                raise StoreUnavailable(
                    "the database has tables but no backwatch schema version; "
                    "point backwatch at an empty database"
                )
            command.upgrade(_config(conn), "head")  # type: ignore[arg-type]
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(engine.url.render_as_string(hide_password=True), exc) from None
    return head_revision()


def migrate_isolated(engine: Engine) -> str:
    """Like ``migrate``, but when the schema is behind, Alembic runs in a short-lived child
    process: ``serve`` then never holds Alembic and Mako in memory (about 8 MB of its
    80 MB budget) for the months it runs after its first start."""
    if stored_revision(engine) == HEAD_REVISION:
        return HEAD_REVISION

    env = {**os.environ, "BACKWATCH_MIGRATE_URL": engine.url.render_as_string(False)}
    code = "from backwatch.store.migrate import _migrate_from_env; _migrate_from_env()"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].removeprefix("error: ") if lines else f"exit {proc.returncode}"
        raise StoreUnavailable(f"cannot migrate the database: {reason}")
    return HEAD_REVISION


def _migrate_from_env() -> None:
    """The child of ``migrate_isolated`` (the URL comes by environment, not argv: it may
    hold a password, and argv is visible to every user of the machine)."""

    engine = make_engine(os.environ["BACKWATCH_MIGRATE_URL"], writer=True)
    try:
        migrate(engine)
    except StoreUnavailable as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(1) from None
    finally:
        engine.dispose()
