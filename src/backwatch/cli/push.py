"""``backwatch push``: report one complete run, from flags or from a JSON document.

Backup scripts call this every night, so it loads without Typer: ``OPTIONS`` declares the
flags once; Typer builds the command from them (``cli.report``) and ``cli.fastpath`` parses
the plain forms of the same line before Typer is imported (``cli.main``).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import UTC, datetime

from backwatch.cli.common import echo, fail, target
from backwatch.cli.options import TARGET, Option

LOG_TAIL_BYTES = 100 * 1024

OPTIONS = (
    Option(
        "job", str, "Job id (slug); with --json, the job of a record that names none.",
        "--job", "-j",
    ),
    Option("status", str, "success, warning, failed, …", "--status", "-s", default="success"),
    Option("started_at", str, "ISO 8601 start (default: now − duration)."),
    Option("finished_at", str, "ISO 8601 end."),
    Option("duration", float, "Seconds the run took."),
    Option("size", int, "Backup size in bytes."),
    Option("files", int, "Files processed."),
    Option("files_new", int, "New files."),
    Option("files_changed", int, "Changed files."),
    Option("bytes_added", int, "Bytes added to the repository."),
    Option("exit_code", int, "Exit code of the backup."),
    Option("message", str, "Short message.", "--message", "-m"),
    Option("log_file", str, "File whose last 100 KB become the log."),
    Option("tool", str, "restic, borg, rsync, …"),
    Option("host", str, "Host name (default: this host)."),
    Option("run_id", str, "Run id; re-sending the same id stores one run.", "--id"),
    Option("phase", str, "NAME=SECONDS, repeatable.", "--phase", "-p", multiple=True),
    Option("json_input", str, "Read the report (native or seed 001) from FILE or '-'.", "--json"),
    Option("quiet", bool, "Print nothing on success.", "--quiet", "-q", default=False),
    Option(
        "pushgateway", str, "Also push the run's metrics to this Prometheus Pushgateway URL.",
        "--pushgateway", envvar="BACKWATCH_PUSHGATEWAY",
    ),
    *TARGET,
)  # fmt: skip


def push(
    *,
    job: str | None,
    status: str,
    started_at: str | None,
    finished_at: str | None,
    duration: float | None,
    size: int | None,
    files: int | None,
    files_new: int | None,
    files_changed: int | None,
    bytes_added: int | None,
    exit_code: int | None,
    message: str | None,
    log_file: str | None,
    tool: str | None,
    host: str | None,
    run_id: str | None,
    phase: list[str] | None,
    json_input: str | None,
    quiet: bool,
    pushgateway: str | None,
    url: str | None,
    token: str | None,
    db: str | None,
    config: str | None,
    data_dir: str | None,
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
    tgt = target(url, token, db, config, data_dir)
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
    from backwatch.ingest import parse_record
    from backwatch.services.pushgateway import push_run

    for item in body if isinstance(body, list) else [body]:
        report = parse_record(item)
        push_run(gateway, report, host=report.host or socket.gethostname())
        if not quiet:
            echo(f"pushed the metrics of {report.job} to {gateway}")


def _read_json_arg(source: str) -> object:
    """The JSON document in file ``source``, or on standard input for ``-``."""
    import json

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
    from backwatch.masking import Masker

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
