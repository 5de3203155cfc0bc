"""The JSON log line: keys, context fields, exceptions as one field, hidden ping keys."""

from __future__ import annotations

import json
import logging

from backwatch.logs import JsonFormatter, TextFormatter, logging_config, safe_path


def _record(msg: str, *args: object, name: str = "backwatch.test", **extra: object):
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_line_has_time_level_logger_message_and_context() -> None:
    record = _record("run %s of job %s: %s", "r1", "photos", "failed", job="photos", run="r1")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "error" and out["logger"] == "backwatch.test"
    assert out["message"] == "run r1 of job photos: failed"
    assert out["job"] == "photos" and out["run"] == "r1"
    assert out["time"].endswith("Z") and out["time"][10] == "T"


def test_an_exception_is_one_traceback_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
        record.exc_info = __import__("sys").exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == "failed"
    assert "ValueError: boom" in out["traceback"]


def test_a_traceback_logged_as_the_message_moves_to_its_field() -> None:
    text = 'Traceback (most recent call last):\n  File "x", line 1\nKeyError: 1\n'
    out = json.loads(JsonFormatter().format(_record("%s", text, name="uvicorn.error")))
    assert out["message"] == "KeyError: 1" and out["traceback"] == text


def test_an_access_line_hides_the_ping_key_in_both_formats() -> None:
    args = ("127.0.0.1:5555", "POST", "/ping/abcdefghijklmnopqrstuv/fail?rid=1", "1.1", 200)
    record = _record('%s - "%s %s HTTP/%s" %d', *args, name="uvicorn.access")
    out = json.loads(JsonFormatter().format(record))
    assert out["path"] == "/ping/<ping-key>/fail?rid=1"
    assert out["status_code"] == 200 and out["method"] == "POST"
    assert "abcdefghijklmnopqrstuv" not in TextFormatter().format(record)


def test_safe_path_hides_tokens() -> None:
    assert "abcdefghijklmnopqrstuvwxyz" not in safe_path("/x?token=bw_abcdefghijklmnopqrstuvwxyz")


def test_text_is_the_default_and_uvicorn_goes_through_the_root_handler() -> None:
    config = logging_config()
    assert config["formatters"]["backwatch"]["()"] is TextFormatter
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}
    assert config["handlers"]["stderr"]["stream"] == "ext://sys.stderr"
