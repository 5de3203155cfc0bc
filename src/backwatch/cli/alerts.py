"""``backwatch alerts list|ack|resolve|snooze`` and ``backwatch notify test``."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from backwatch.cli import seed_spellings as seed
from backwatch.cli.common import console, print_json
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, HttpTarget, Where, open_target
from backwatch.errors import InvalidInput
from backwatch.notify.transport import TransportError, mask_url, send
from backwatch.timeutil import iso, parse_duration

alerts_app = typer.Typer(help="Alerts: list, acknowledge, resolve, snooze.", no_args_is_help=True)
notify_app = typer.Typer(help="Notification channels (Apprise).", no_args_is_help=True)
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(notify_app, name="notify")


@alerts_app.callback(invoke_without_command=True)
@targeted(hidden=True)
def _alerts(
    ctx: typer.Context,
    action: seed.ActionOpt = None,
    alert_id: seed.AlertIdOpt = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Alerts: list, acknowledge, resolve, snooze."""
    # seed 003's `alerts --action list`
    seed.alerts_action(ctx, action, alert_id, where, list_alerts=alerts_list, act=_act)


def _call(tgt: Any, http: tuple[str, str, Any, dict | None], local: Any) -> Any:
    """Run over HTTP when the target is a server, else in-process on its hub."""

    if isinstance(tgt, HttpTarget):
        method, path, body, query = http
        return tgt.request(method, path, body, query)
    return local(tgt.hub)


@alerts_app.command("list")
@targeted()
def alerts_list(
    state: Annotated[
        str | None, typer.Option(help="open, acknowledged or resolved (default: all).")
    ] = None,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Alerts per page, 1 to 1000.", min=1, max=1000)
    ] = 200,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="The next page, as the last page printed it.")
    ] = None,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Alerts, newest first, a page at a time (the next page's command follows a full one)."""
    from backwatch.services import alerts as service  # the store: see cli/root.py

    if state is not None and state not in ("open", "acknowledged", "resolved"):
        raise InvalidInput("--state must be open, acknowledged or resolved")
    tgt = open_target(where)
    query = {"state": state, "job": job, "limit": limit, "cursor": cursor}

    def local(hub: Any) -> Any:
        with hub.read_engine.connect() as conn:
            return service.alert_page(conn, state=state, job=job, limit=limit, cursor=cursor)

    try:
        page = _call(tgt, ("GET", "/api/v1/alerts", None, query), local)
    finally:
        tgt.close()
    items, follow = page["items"], page.get("next_cursor")
    more = None
    if follow:
        words = ["backwatch", "alerts", "list", *(["--json"] if json_out else [])]
        for option, value in (("--state", state), ("--job", job)):
            if value is not None:
                words += [option, value]
        if limit != 200:
            words += ["--limit", str(limit)]
        more = shlex.join([*words, "--cursor", follow])
    if json_out:
        print_json(items)
        if more:
            sys.stderr.write(f"more alerts; the next page: {more}\n")
        return
    if not items:
        typer.echo("no alerts")
        return

    table = Table(header_style="bold")
    for col in ("id", "state", "severity", "job", "rule", "opened", "message"):
        table.add_column(col, overflow="fold")
    for a in items:
        style = SEVERITY_STYLE.get(a["severity"], "white")
        table.add_row(
            str(a["id"]),
            a["state"],
            f"[{style}]{a['severity']}[/]",
            a["job"],
            a["rule"],
            (a["opened_at"] or "").replace("T", " ")[:19],
            a["message"],
        )
    console().print(table)
    if more:
        typer.echo(f"next page: {more}")


def _act(action: str, alert_id: int, where: Where) -> None:
    from backwatch.services import alerts as service  # the store: see cli/root.py

    tgt = open_target(where)
    try:
        row = _call(
            tgt,
            ("POST", f"/api/v1/alerts/{alert_id}/{action}", {}, None),
            lambda hub: service.alert_out(
                hub.write(service.set_alert_state(hub.settings, alert_id, action, hub.now(), "cli"))
            ),
        )
    finally:
        tgt.close()
    typer.echo(f"alert {row['id']} ({row['job']}: {row['rule']}) is now {row['state']}")


@alerts_app.command("ack")
@targeted()
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `alerts list`).")],
    where: Where = DEFAULT_TARGET,
) -> None:
    """Acknowledge an alert: it stays open but is not re-notified."""
    _act("ack", alert_id, where)


@alerts_app.command("resolve")
@targeted()
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `alerts list`).")],
    where: Where = DEFAULT_TARGET,
) -> None:
    """Resolve an alert by hand (it reopens if its condition still holds)."""
    _act("resolve", alert_id, where)


@alerts_app.command("snooze")
@targeted()
def alerts_snooze(
    job: Annotated[str, typer.Argument(help="Job id.")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h; 0 lifts it.")],
    where: Where = DEFAULT_TARGET,
) -> None:
    """Hold back a job's notifications for a while (alerts still open and show)."""
    from backwatch.services import alerts as service  # the store: see cli/root.py

    try:
        seconds = parse_duration(duration, field="--for")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    tgt = open_target(where)
    try:
        result = _call(
            tgt,
            ("POST", f"/api/v1/jobs/{job}/snooze", {"for": duration}, None),
            lambda hub: {
                "snoozed_until": iso(hub.write(service.snooze(job, seconds, hub.now(), "cli")))
            },
        )
    finally:
        tgt.close()
    until = result["snoozed_until"]
    typer.echo(
        f"{job}: notifications held back until {until}" if until else f"{job}: snooze lifted"
    )


@notify_app.command("test")
@targeted("config")
def notify_test(
    apprise_url: Annotated[
        list[str] | None,
        typer.Option("--url", help="Send to this Apprise URL instead of the configured ones."),
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Send a test message now and say, per channel, whether it arrived."""

    urls = list(apprise_url or [])
    if not urls:
        settings = where.settings()
        urls = [u for target_ in settings.notify for u in target_.urls]
    if not urls:
        raise typer.BadParameter("no [[notify]] urls in the config; give --url", param_hint="--url")
    failed = 0
    for url in urls:
        try:
            send(url, "backwatch test message", "If you can read this, backwatch can reach you.")
            typer.echo(f"sent: {mask_url(url)}")
        except TransportError as exc:
            failed += 1
            typer.echo(f"failed: {mask_url(url)}: {exc.message}", err=True)
    if failed:
        raise typer.Exit(1)
