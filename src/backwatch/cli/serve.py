"""``backwatch serve``: the dashboard, the API, ingest and everything that runs on a timer."""

from __future__ import annotations

from typing import Annotated

import typer

from backwatch.cli.params import ConfigOpt, DataDirOpt


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default 127.0.0.1: local only).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5001).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the server: dashboard, API, ingest and alerts.

    One process serves the dashboard, the API and /metrics, ingests reports and prunes old
    runs. It uses SQLite in the data directory unless BACKWATCH_DATABASE_URL names another
    database, and applies schema migrations on start. It binds to 127.0.0.1:5001 by default;
    the first start creates an API token and prints where it is (<data>/token).
    """
    import logging

    import uvicorn

    from backwatch.cli.target import local_settings
    from backwatch.store.engine import describe
    from backwatch.web.app import create_app

    settings = local_settings(config=config, db=None, data_dir=data_dir)
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    from backwatch.private_files import make_private_dir

    make_private_dir(settings.data_dir)  # 0700: it holds the ping keys and the token
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from backwatch.services.hub import Hub

    logging.getLogger("alembic").setLevel(logging.WARNING)

    # fails here, with a clear message, on a bad database; Alembic runs in a child process
    hub = Hub(settings, grouped=True, migrate="isolated")
    app = create_app(settings, hub=hub, freeze_heap=True)
    typer.echo(
        f"backwatch serving on http://{settings.server.host}:{settings.server.port} "
        f"(database {describe(settings.db_url)})",
        err=True,
    )
    from backwatch.web.hosts import names_hint

    hint = names_hint(settings.server)
    if hint:
        typer.echo(f"note: {hint}", err=True)
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=log_level.lower(),
        access_log=False,
        server_header=False,
        # open live-stream (SSE) connections never end by themselves: don't wait for them
        timeout_graceful_shutdown=3,
    )
    hub.close()
