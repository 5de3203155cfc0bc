"""The FastAPI application, built by ``create_app(settings)`` (never at import time)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from backwatch import __version__
from backwatch.runners.scheduler import Scheduler
from backwatch.services import retention
from backwatch.services.bootstrap import ensure_first_token, sync_configured_jobs
from backwatch.services.changefeed import ChangeFeed
from backwatch.services.hub import Hub
from backwatch.services.leader import Leader
from backwatch.services.status_files import StatusFileWriter
from backwatch.services.watch import Watcher
from backwatch.settings import Settings
from backwatch.web import errors, fastpath, openapi, pages, stream
from backwatch.web.deps import TokenCache
from backwatch.web.hosts import AllowedHosts, host_header, refuse
from backwatch.web.limits import BodyLimit
from backwatch.web.routes import alerts as alert_routes
from backwatch.web.routes import (
    analysis,
    drill,
    duplicati,
    health,
    jobs,
    overview,
    prom,
    run_trigger,
    runs,
    tool_output,
)
from backwatch.web.routes import badges as badge_routes
from backwatch.web.routes import hc_api as hc_api_routes
from backwatch.web.routes import ping as ping_routes
from backwatch.web.routes import snapshots as snapshot_routes
from backwatch.web.tasks import AlertTasks

log = logging.getLogger("backwatch.serve")
RETENTION_EVERY_S = 24 * 3600


class BackwatchAPI(FastAPI):
    """FastAPI, but ``POST /api/v1/runs`` goes straight to ``web/fastpath.py`` (the ingest
    hot path); ``fast_ingest = False`` sends it through the framework like every request."""

    fast_ingest = True
    #: which Host headers are answered (``web/hosts.py``); set by ``create_app``
    allowed_hosts: AllowedHosts | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.allowed_hosts is not None:
            header = host_header(scope)
            if not self.allowed_hosts.allows(header):  # before anything, /ping and ingest too
                await refuse(send, header or "")
                return
        if self.fast_ingest and fastpath.handles(scope):
            await fastpath.answer(self, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, hub: Hub | None = None, freeze_heap: bool = False) -> FastAPI:
    """Build the app. With ``hub`` given (tests), the caller owns it; else lifespan makes one.

    ``freeze_heap`` (``serve``): once started, move everything alive into the garbage
    collector's permanent generation. The modules, the app and its caches live as long as
    the process, and without this every full collection walks them again: pauses in the
    middle of requests (the overview's slow tail; figures in bench/RESULTS.md)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hub is None
        h = hub or Hub(settings, grouped=True)
        app.state.hub = h
        created = ensure_first_token(h)
        if created is not None:
            log.warning("created the first API token; it is in %s (mode 0600)", created)
        sync_configured_jobs(h)

        status_files = StatusFileWriter(h)  # keeps <data>/status/<job>_status.json current
        status_files.start()
        watcher = Watcher(h)  # tails JSONL files, reads [ingest] status_dirs
        watcher.start()

        broadcaster = stream.install(app, h)  # live pages: hub changes → /api/v1/stream
        alert_tasks = AlertTasks(h)  # rule evaluation, disk samples, notification delivery
        app.state.alert_tasks = alert_tasks
        alert_tasks.start()
        stopping = threading.Event()  # ends a prune under way between two of its chunks
        task = asyncio.create_task(_retention_loop(h, alert_tasks.leader, stopping))

        scheduler = Scheduler(h, alert_tasks.leader)  # runs configured jobs (docs/runner.md)
        app.state.scheduler = scheduler
        scheduler.start()
        # PostgreSQL: what other instances commit reaches the listeners above too
        feed = ChangeFeed(h.read_engine, h.instance, h.listeners, alert_tasks.changes_unheard)
        app.state.changefeed = feed
        feed.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(feed.stop)
            await scheduler.stop()
            broadcaster.detach()
            stopping.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await alert_tasks.stop()
            watcher.stop()
            status_files.stop()
            if own:
                h.close()

    app = BackwatchAPI(
        title="backwatch",
        version=__version__,
        description="Knows whether your backups work. Writes need `Authorization: Bearer`.",
        lifespan=lifespan,
    )
    app.allowed_hosts = AllowedHosts.from_settings(settings.server)
    app.state.settings = settings
    app.state.token_cache = TokenCache()
    errors.install(app)
    openapi.install(app)

    app.include_router(health.router)  # /health, /livez, /readyz
    app.include_router(overview.router)
    app.include_router(runs.router)
    app.include_router(jobs.router)
    app.include_router(analysis.router)

    app.include_router(ping_routes.router)
    app.include_router(hc_api_routes.router)  # Healthchecks' /api/v1|v2|v3/checks/ …
    app.include_router(badge_routes.router)

    app.include_router(prom.router)

    app.include_router(alert_routes.router)

    app.include_router(run_trigger.router)

    app.include_router(snapshot_routes.router)

    app.include_router(tool_output.router)
    app.include_router(duplicati.router)  # Duplicati's --send-http-url reports
    app.include_router(drill.router)

    app.include_router(stream.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)
    return app


async def _retention_loop(h: Hub, leader: Leader, stopping: threading.Event) -> None:
    """Prune raw runs at start-up and then once a day, on the leader only (a follower looks
    again every hour, in case it becomes the leader). The prune goes in small transactions
    from a thread: reports are stored between its chunks."""
    while True:
        if not leader.check():
            await asyncio.sleep(RETENTION_EVERY_S / 24)
            continue
        try:
            days = h.settings.retention_days
            removed = await asyncio.to_thread(
                retention.prune, h.write, h.now(), days, stop=stopping
            )
            if removed:
                log.info("retention: removed %d runs older than %d days", removed, days)
        except Exception:  # keep serving; the next day tries again
            log.exception("retention prune failed")
        await asyncio.sleep(RETENTION_EVERY_S)
