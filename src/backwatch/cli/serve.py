"""``backwatch serve``: the dashboard, the API, ingest and everything that runs on a timer."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from backwatch.cli.common import CommandFailed, fail
from backwatch.cli.params import LOCAL, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where
from backwatch.errors import BackwatchError
from backwatch.logs import log, log_changes, setup_logging
from backwatch.private_files import make_private_dir


def register(app: typer.Typer) -> None:
    app.command()(serve)


@targeted(*LOCAL)
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default 127.0.0.1: local only).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5001).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(
            help="text (default) or json: every stderr line a JSON object (BACKWATCH_LOG_FORMAT)."
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log", help="Log every HTTP request (ping keys hidden)."
        ),
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Run the server: dashboard, API, ingest and alerts.

    One process serves the dashboard, the API and /metrics, ingests reports and prunes old
    runs. It uses SQLite in the data directory unless BACKWATCH_DATABASE_URL names another
    database, and applies schema migrations on start. It binds to 127.0.0.1:5001 by default;
    the first start creates an API token and prints where it is (<data>/token).
    """

    if log_format not in (None, "text", "json"):
        raise fail(f"--log-format must be 'text' or 'json', not {log_format!r}", 2)
    # known before the settings are: a bad config file is a JSON line too
    env = os.environ
    early = env.get("BACKWATCH_LOG_FORMAT") or env.get("BACKWATCH_SERVER__LOG_FORMAT")
    early_format = log_format or early or "text"
    try:
        _serve(where, host, port, log_level, log_format, access_log)
    except BackwatchError as exc:
        if early_format != "json":
            raise
        setup_logging(log_level, "json")
        log.critical("%s", exc.message)
        raise CommandFailed(1) from None
    except Exception as exc:  # a bug: one JSON line with its traceback, not a bare line
        if early_format != "json" or os.environ.get("BACKWATCH_DEBUG"):
            raise
        setup_logging(log_level, "json")
        log.critical(
            "internal error: %s: %s (this is a bug)", type(exc).__name__, exc, exc_info=exc
        )
        raise CommandFailed(70) from None


def _serve(
    where: Where,
    host: str | None,
    port: int | None,
    log_level: str,
    log_format: str | None,
    access_log: bool | None,
) -> None:
    import uvicorn  # the server: see cli/root.py

    from backwatch.store.connect import describe  # the store: see cli/root.py
    from backwatch.web.app import create_app  # the server: see cli/root.py

    settings = where.settings()
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    fmt = log_format or settings.server.log_format
    log_config = setup_logging(log_level, fmt)

    make_private_dir(settings.data_dir)  # 0700: it holds the ping keys and the token
    from backwatch.services.hub import Hub  # the store: see cli/root.py

    # fails here, with a clear message, on a bad database; Alembic runs in a child process
    hub = Hub(settings, grouped=True, migrate="isolated")
    hub.listeners.append(log_changes)  # a line per run stored and per alert opened/resolved
    app = create_app(settings, hub=hub, freeze_heap=True)
    serving = (
        f"backwatch serving on http://{settings.server.host}:{settings.server.port} "
        f"(database {describe(settings.db_url)})"
    )
    from backwatch.web.hosts import names_hint  # the server: see cli/root.py

    hint = names_hint(settings.server)
    if fmt == "json":  # every stderr line a JSON object
        log.warning("%s", serving)
        if hint:
            log.warning("note: %s", hint)
    else:
        typer.echo(serving, err=True)
        if hint:
            typer.echo(f"note: {hint}", err=True)
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=log_level.lower(),
        log_config=log_config,
        access_log=access_log if access_log is not None else settings.server.access_log,
        server_header=False,
        # open live-stream (SSE) connections never end by themselves: don't wait for them
        timeout_graceful_shutdown=3,
    )
    hub.close()
