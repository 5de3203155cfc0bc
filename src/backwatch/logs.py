"""The server's log lines: plain text (the default) or one JSON object per line.

``backwatch serve --log-format json`` (``BACKWATCH_LOG_FORMAT=json``, ``[server]
log_format``) makes every line on stderr a JSON object, uvicorn's own loggers included, for
Loki, journald's JSON export or any log shipper::

    {"time": "2026-12-07T17:40:00.123Z", "level": "info", "logger": "backwatch.runs",
     "message": "run r_01… of job photos: success", "job": "photos", "run": "r_01…"}

``time`` is ISO 8601 in UTC, ``level`` lower case; ``job``, ``run`` and the other fields
of ``CONTEXT_FIELDS`` appear when the code that logs passes them (``extra={"job": …}``);
an exception is one ``traceback`` field, never lines of its own. One logging
configuration (``logging_config``) serves the process and uvicorn (its ``log_config``).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading
import time
from typing import Any, Literal

from backwatch.masking import PING_KEY_MASK, mask_shapes

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: fields a log call may add with ``extra=``; each becomes a key of the JSON line
CONTEXT_FIELDS = ("job", "run", "alert", "rule", "severity", "status", "state", "trigger")
#: ``/ping/<key>/…``: the key is a secret even in a request line
_PING_PATH = re.compile(r"(/ping/)[^/?\s]+")

log = logging.getLogger("backwatch.serve")


def _iso_utc(created: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def safe_path(path: str) -> str:
    """A request path fit for a log: ping keys and token shapes hidden."""
    return mask_shapes(_PING_PATH.sub(rf"\g<1>{PING_KEY_MASK}", path))


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """uvicorn's access record: ``args = (client, method, path, http_version, status)``."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, version, status = args
    path = safe_path(str(path))
    return {
        "message": f'{client} - "{method} {path} HTTP/{version}" {status}',
        "client": str(client),
        "method": str(method),
        "path": path,
        "status_code": int(status) if str(status).isdigit() else str(status),
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and context fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = _access_fields(record)
        if access is not None:
            out.update(access)
        else:
            out["message"] = record.getMessage()
            if out["message"].startswith("Traceback (most recent call last)"):
                # uvicorn logs some tracebacks as the message itself: keep the last line
                out["traceback"] = out["message"]
                out["message"] = out["message"].rstrip().rsplit("\n", 1)[-1]
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None and name not in out:
                out[name] = value
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["traceback"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain-text line; an access record's path has its ping key hidden."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        access = _access_fields(record)
        if access is not None:
            record = logging.makeLogRecord({**record.__dict__, "msg": access["message"]})
            record.args = None
        return super().format(record)


def logging_config(level: str = "info", fmt: LogFormat = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process and uvicorn: every record, uvicorn's
    error and access loggers too, leaves through one stderr handler in format ``fmt``."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"backwatch": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "backwatch",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers would print its lines its own way (access to stdout)
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "alembic": {"level": "WARNING"},
        },
    }


def setup_logging(level: str = "info", fmt: LogFormat = "text") -> dict[str, Any]:
    """Configure logging for ``serve`` and return the config (uvicorn's ``log_config``).

    In JSON format, Python warnings and uncaught exceptions (main or any thread) are log
    records too, so nothing reaches stderr as a bare line."""
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    if fmt == "json":
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_thread_exception
    return config


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    logging.getLogger("backwatch").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("backwatch").error("uncaught exception in thread %s", name, exc_info=exc_info)


_runs_log = logging.getLogger("backwatch.runs")
_alerts_log = logging.getLogger("backwatch.alerts")


def log_changes(changes: list[dict[str, Any]]) -> None:
    """A hub listener (called after each commit): one line per run stored or finished and
    per alert opened or resolved, with ``job``, ``run`` and ``alert`` fields."""
    for change in changes:
        kind = change.get("type")
        if change.get("from"):
            continue  # another instance's write (services/changefeed.py): it logs it
        if kind == "run" and "status" in change:
            run, job, status = change["id"], change["job"], change["status"]
            extra = {"job": job, "run": run, "status": status}
            _runs_log.info("run %s of job %s: %s", run, job, status, extra=extra)
        elif kind == "alert" and change.get("state") in ("open", "resolved"):
            alert, job, state = change["id"], change["job"], change["state"]
            rule = change.get("rule")
            what = f"{rule} alert" if rule else "alert"
            extra = {"job": job, "alert": alert, "state": state, "rule": rule}
            level = logging.WARNING if state == "open" else logging.INFO
            verb = "opened" if state == "open" else "resolved"
            _alerts_log.log(level, "%s %s %s for job %s", what, alert, verb, job, extra=extra)
