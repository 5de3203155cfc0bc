"""``backwatch metrics [--textfile PATH]``: the ``/metrics`` exposition without a scrape.

For node_exporter's textfile collector on hosts where Prometheus cannot reach a backwatch
server (or there is none): a timer runs ``backwatch metrics --textfile
/var/lib/node_exporter/textfile_collector/backwatch.prom`` and node_exporter serves the file.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from backwatch.cli.common import fail, warn
from backwatch.cli.params import targeted
from backwatch.cli.target import (
    DEFAULT_TARGET,
    HTTP_TIMEOUT_S,
    HttpTarget,
    Unreachable,
    Where,
    open_target,
)

#: the Prometheus text format: what node_exporter's textfile collector parses
TEXT_FORMAT = "text/plain;version=0.0.4"


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)


@targeted()
def metrics(
    textfile: Annotated[
        Path | None,
        typer.Option(
            "--textfile",
            help="Write the metrics to this file (atomically: a temp file in the same folder, "
            "then renamed) instead of printing them; for node_exporter's textfile collector, "
            "a *.prom file in its --collector.textfile.directory.",
        ),
    ] = None,
    all_jobs: Annotated[
        bool,
        typer.Option(
            "--all-jobs",
            help="Every job's per-job series, however many jobs (above \\[metrics] "
            "per_job_limit only the jobs with a problem have them; docs/alerts.md).",
        ),
    ] = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Print the Prometheus metrics that GET /metrics serves, or write them to a file.

    From the database (--db, --data-dir, --config) on a host without a server, or from a
    server (--url). The output is the Prometheus text format, the one node_exporter's
    textfile collector reads:

        backwatch metrics --textfile /var/lib/node_exporter/textfile_collector/backwatch.prom
    """

    tgt: Any = open_target(where, read_only=True)
    try:
        if isinstance(tgt, HttpTarget):
            body = _from_server(tgt, all_jobs=all_jobs)
        else:
            body = _from_database(tgt, all_jobs=all_jobs)
    finally:
        tgt.close()
    if textfile is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    if textfile.suffix != ".prom":
        warn(f"{textfile}: node_exporter's textfile collector reads only files named *.prom")
    try:
        write_atomically(textfile, body)
    except OSError as exc:
        raise fail(f"cannot write {textfile}: {exc.strerror or exc}") from None


def _from_database(tgt: Any, *, all_jobs: bool) -> bytes:
    from backwatch.services.prometheus import exposition  # the store: see cli/root.py

    body, _content_type = exposition(tgt.hub, every_job=all_jobs)
    return body


def _from_server(tgt: HttpTarget, *, all_jobs: bool) -> bytes:
    path = "/metrics?jobs=all" if all_jobs else "/metrics"
    req = urllib.request.Request(tgt.url + path, headers={"Accept": TEXT_FORMAT})
    if tgt.token:
        req.add_header("Authorization", f"Bearer {tgt.token}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            body: bytes = resp.read()
            content_type = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise tgt._remote_error(exc.code, exc.read(), "/metrics") from None
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise Unreachable(f"cannot reach the server at {tgt.shown_url}: {reason}") from None
    if not content_type.startswith("text/plain"):
        raise Unreachable(
            f"{tgt.shown_url}/metrics answered {content_type or 'no content type'}, not the "
            "Prometheus text format; is --url the address of a backwatch server?"
        )
    return body


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` to a temp file beside ``path``, flushed to disk, then renamed over ``path``:
    a collector reading the file never sees half of it. The temp file's name does not end
    in ``.prom``, so the collector never reads it either."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # node_exporter runs as its own user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
