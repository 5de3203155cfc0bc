"""``backwatch push``: report one complete run, from flags or from a JSON document.

Backup scripts call this every night. ``cli.report`` registers it with the other reporting
commands; ``read_log``, ``drop_none`` and ``iso_now`` serve them too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from backwatch.cli.common import echo, fail
from backwatch.cli.params import targeted
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.masking import Masker

LOG_TAIL_BYTES = 100 * 1024


@targeted()
def push(
    job: Annotated[
        str | None,
        typer.Option(
            "--job", "-j", help="Job id (slug); with --json, the job of a record that names none."
        ),
    ] = None,
    status: Annotated[
        str, typer.Option("--status", "-s", help="success, warning, failed, …")
    ] = "success",
    started_at: Annotated[
        str | None, typer.Option(help="ISO 8601 start (default: now − duration).")
    ] = None,
    finished_at: Annotated[str | None, typer.Option(help="ISO 8601 end.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds the run took.")] = None,
    size: Annotated[int | None, typer.Option(help="Backup size in bytes.")] = None,
    files: Annotated[int | None, typer.Option(help="Files processed.")] = None,
    files_new: Annotated[int | None, typer.Option(help="New files.")] = None,
    files_changed: Annotated[int | None, typer.Option(help="Changed files.")] = None,
    bytes_added: Annotated[int | None, typer.Option(help="Bytes added to the repository.")] = None,
    exit_code: Annotated[int | None, typer.Option(help="Exit code of the backup.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Short message.")] = None,
    log_file: Annotated[
        str | None, typer.Option(help="File whose last 100 KB become the log.")
    ] = None,
    tool: Annotated[str | None, typer.Option(help="restic, borg, rsync, …")] = None,
    host: Annotated[str | None, typer.Option(help="Host name (default: this host).")] = None,
    run_id: Annotated[
        str | None, typer.Option("--id", help="Run id; re-sending the same id stores one run.")
    ] = None,
    phase: Annotated[
        list[str] | None, typer.Option("--phase", "-p", help="NAME=SECONDS, repeatable.")
    ] = None,
    json_input: Annotated[
        str | None,
        typer.Option("--json", help="Read the report (native or seed 001) from FILE or '-'."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
    pushgateway: Annotated[
        str | None,
        typer.Option(
            envvar="BACKWATCH_PUSHGATEWAY",
            help="Also push the run's metrics to this Prometheus Pushgateway URL.",
        ),
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Report one complete run, from flags or from a JSON document.

    Examples:
      backwatch push --job photos --status success --duration 312 --size 1073741824
      echo '{"timestamp": "…", "backup_id": "…", "success": true}' | backwatch push --json -
    """
    if json_input is not None:
        body = _read_json_arg(json_input)
        if job and isinstance(body, dict):
            body.setdefault("job", job)  # e.g. a seed 001 line, which names no job
    else:
        if not job:
            raise fail("give --job JOB (or --json FILE with a report)", 2)
        if started_at is None:
            started_at = _start_before(duration)
        body = drop_none(
            {
                "id": run_id,
                "job": job,
                "host": host or socket.gethostname(),
                "status": status,
                "started_at": started_at,
                "finished_at": finished_at,
                "duration_s": duration,
                "size_bytes": size,
                "files": files,
                "files_new": files_new,
                "files_changed": files_changed,
                "bytes_added": bytes_added,
                "exit_code": exit_code,
                "message": message,
                "log": read_log(log_file),
                "tool": tool,
                "phases": _phases(phase),
            }
        )
    tgt = open_target(where)
    try:
        ack = tgt.report(body)
    finally:
        tgt.close()
    if not quiet:
        items = ack["items"] if isinstance(ack, dict) and "items" in ack else [ack]
        for item in items:
            verb = "recorded" if item.get("created") else "already recorded"
            verb = "spooled (server unreachable)" if item.get("spooled") else verb
            echo(f"{verb} run {item['id']} of job {item['job']} ({item['status']})")
    if pushgateway:
        _push_to_gateway(pushgateway, body, quiet=quiet)


def _push_to_gateway(gateway: str, body: object, *, quiet: bool) -> None:
    """Also push the run's metrics to a Prometheus Pushgateway."""
    # prometheus_client and the report models, only with --pushgateway
    from backwatch.ingest import parse_record
    from backwatch.services.pushgateway import push_run

    for item in body if isinstance(body, list) else [body]:
        report = parse_record(item)
        push_run(gateway, report, host=report.host or socket.gethostname())
        if not quiet:
            echo(f"pushed the metrics of {report.job} to {gateway}")


def _read_json_arg(source: str) -> object:
    """The JSON document in file ``source``, or on standard input for ``-``."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise fail(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise fail(f"{source} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        name = "standard input" if source == "-" else source
        raise fail(
            f"{name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def read_log(path: str | None) -> str | None:
    """The last ``LOG_TAIL_BYTES`` of a log file, as text."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            text = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        raise fail(f"cannot read log file {path}: {exc.strerror or exc}") from None
    # a script's log often echoes its own environment's secrets (RESTIC_PASSWORD …)
    return Masker.for_env(dict(os.environ))(text)


def _phases(values: list[str] | None) -> dict[str, float] | None:
    if not values:
        return None
    out: dict[str, float] = {}
    for item in values:
        name, sep, seconds = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(seconds)
        except ValueError:
            raise fail(f"--phase {item!r}: use NAME=SECONDS, e.g. --phase archive=318") from None
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _start_before(duration: float | None) -> str | float:
    """Now minus ``duration`` as ISO 8601; a time no calendar prints (a --duration of 1e308)
    as the number, for the report's checks to refuse, naming --duration's field."""
    start = time.time() - (duration or 0)
    try:
        return _iso(start)
    except (OverflowError, ValueError, OSError):
        return start


def iso_now() -> str:
    """Now, as the ISO 8601 time a report carries (``start`` uses it too)."""
    return _iso(time.time())


def drop_none(obj: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if v is not None}
