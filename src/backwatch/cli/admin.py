"""Administration on the database directly: ``token`` and ``db``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from backwatch.cli.common import console, print_json
from backwatch.cli.params import DATABASE, JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where
from backwatch.timeutil import iso

token_app = typer.Typer(help="Manage API tokens (stored hashed; shown once).", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance: migrate, prune, vacuum.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.add_typer(db_app, name="db")


def _hub(where: Where, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    from backwatch.services.hub import Hub  # the store: see cli/root.py

    return Hub(where.settings(), migrate=migrate)


@token_app.command("create")
@targeted(*DATABASE)
def token_create(
    name: Annotated[str, typer.Option("--name", "-n", help="A name for the token, e.g. host1.")],
    scope: Annotated[
        str,
        typer.Option(
            help="read; ingest (report runs); operate (run, pause, resume, ack, resolve, "
            "snooze, notify test); or admin (everything)."
        ),
    ] = "ingest",
    jobs: Annotated[
        list[str] | None,
        typer.Option(
            "--jobs",
            help="Ingest only: report only for jobs matching this glob ('web-*', 'db-dump'). "
            "Repeat for more.",
        ),
    ] = None,
    hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--hosts",
            help="Ingest only: report only from hosts matching this glob ('web*'). "
            "Repeat for more.",
        ),
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Create a token and print it once. Give it to a host as BACKWATCH_TOKEN."""
    from backwatch.services import tokens  # the store: see cli/root.py

    # checked before the database is opened: a typo costs nothing
    job_patterns = tokens.check_patterns("jobs", jobs)
    host_patterns = tokens.check_patterns("hosts", hosts)
    with _hub(where) as hub:
        secret, _row = hub.write(
            tokens.create_token(name, scope, hub.now(), jobs=job_patterns, hosts=host_patterns)
        )
    typer.echo(secret)
    limits = _limits(job_patterns, host_patterns)
    typer.echo(
        f"token {name!r} ({scope}{', ' + limits if limits else ''}) created; "
        "it is shown only this once",
        err=True,
    )


def _limits(jobs: list[str], hosts: list[str]) -> str:
    """'jobs web-*, db-dump; hosts web*', or '' for a token not limited by patterns."""
    parts = []
    if jobs:
        parts.append("jobs " + ", ".join(jobs))
    if hosts:
        parts.append("hosts " + ", ".join(hosts))
    return "; ".join(parts)


@token_app.command("list")
@targeted(*DATABASE)
def token_list(
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Tokens with their scope, job and host patterns, and prefix (never the secret)."""
    from backwatch.services import tokens  # the store: see cli/root.py

    with _hub(where) as hub:
        rows = tokens.list_tokens(hub.read_engine)
    items = [
        {
            "name": r["name"],
            "prefix": r["prefix"] + "…",
            "scope": r["scope"],
            "jobs": r["jobs"],
            "hosts": r["hosts"],
            "created_at": iso(r["created_at"]),
            "revoked_at": iso(r["revoked_at"]),
        }
        for r in rows
    ]
    if json_out:
        print_json(items)
        return

    table = Table(header_style="bold")
    for col in ("name", "prefix", "scope", "jobs", "hosts", "created", "revoked"):
        # patterns wrap on a narrow terminal rather than end in '…': they are the point
        table.add_column(col, overflow="fold" if col in ("jobs", "hosts") else "ellipsis")
    for item in items:
        any_ = "any" if item["scope"] in ("ingest", "admin") else ""
        table.add_row(
            item["name"],
            item["prefix"],
            item["scope"],
            ", ".join(item["jobs"]) or any_,
            ", ".join(item["hosts"]) or any_,
            item["created_at"] or "",
            item["revoked_at"] or "",
        )
    console().print(table)


@token_app.command("revoke")
@targeted(*DATABASE)
def token_revoke(
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")],
    where: Where = DEFAULT_TARGET,
) -> None:
    """Revoke a token; a running server stops accepting it within 5 seconds."""
    from backwatch.services import tokens  # the store: see cli/root.py

    with _hub(where) as hub:
        hub.write(tokens.revoke_token(name, hub.now()))
    typer.echo(f"token {name!r} revoked")


@db_app.command("migrate")
@targeted(*DATABASE)
def db_migrate(where: Where = DEFAULT_TARGET) -> None:
    """Create or upgrade the schema (serve does this on start too)."""
    from backwatch.store.connect import describe  # the store: see cli/root.py
    from backwatch.store.migrate import current_revision  # the store: see cli/root.py

    with _hub(where) as hub:
        revision = current_revision(hub.write_engine)
        typer.echo(f"{describe(hub.settings.db_url)} is at schema revision {revision}")


@db_app.command("prune")
@targeted(*DATABASE)
def db_prune(
    days: Annotated[
        int | None, typer.Option(help="Keep this many days (default RETENTION_DAYS, 90).")
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Delete raw runs older than the retention period (daily rollups stay two years)."""
    from backwatch.services import retention  # the store: see cli/root.py

    with _hub(where) as hub:
        keep = days if days is not None else hub.settings.retention_days
        if keep < 1:
            raise typer.BadParameter("must be at least 1", param_hint="--days")
        removed = retention.prune(hub.write, hub.now(), keep, actor="cli")
    typer.echo(f"removed {removed} runs older than {keep} days")


@db_app.command("vacuum")
@targeted(*DATABASE)
def db_vacuum(where: Where = DEFAULT_TARGET) -> None:
    """Reclaim free space (SQLite VACUUM, PostgreSQL VACUUM ANALYZE)."""
    from backwatch.store.connect import describe  # the store: see cli/root.py

    with _hub(where) as hub:
        # VACUUM cannot run inside a transaction, and the engine's connections begin one on
        # first use; so it goes straight to the driver, outside any transaction.
        raw = hub.write_engine.raw_connection()
        try:
            driver = raw.driver_connection
            if hub.dialect == "sqlite":
                driver.execute("VACUUM")
            else:
                driver.autocommit = True
                try:
                    driver.execute("VACUUM ANALYZE")
                finally:
                    driver.autocommit = False
        finally:
            raw.close()
        typer.echo(f"vacuumed {describe(hub.settings.db_url)}")
