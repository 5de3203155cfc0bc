"""Duplicati's ``--send-http-url`` report → ``RunReport`` (docs/duplicati.md).

Duplicati posts one report when an operation ends (``SendHttpMessage.cs``), in one of two
shapes chosen by ``--send-http-result-output-format``:

* ``Json``: ``application/json``, ``{"Data": <result>, "Extra": {...}, "LogLines": [...],
  "Exception": "..."|null}`` (``JsonFormatSerializer.cs``). ``Data`` is the result object
  (``BackupResults``: ``ParsedResult``, ``BeginTime``, ``SizeOfExaminedFiles``, … and
  ``BackendStatistics``); ``Extra`` has ``OperationName``, ``backup-name``,
  ``backup-id``, ``machine-name``.
* ``Duplicati`` (the default): a form, ``message=<text>`` (the field is
  ``--send-http-message-parameter-name``), the text being the ``--send-http-message``
  template, by default ``Duplicati <Operation> report for <backup-name> (<machine-id>,
  <backup-id>, <machine-name>)``, a blank line, then ``Name: value`` lines
  (``DuplicatiFormatSerializer.cs``; times are ``<local time> (<unix seconds>)``), with
  ``Failed: …``/``Details: …`` first when an exception stopped the operation and
  ``Log data:`` last.

Status: ``ParsedResult`` Success → success, Warning → warning, Error and Fatal (or any
exception) → failed; an interrupted run is cancelled; anything else (``Unknown``, no result
at all) is ``unknown``, never a success. Backups are ``backup`` runs, ``Test`` operations
``check`` runs; other operations (``--send-http-any-operation``) and dry runs are not runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import MESSAGE_LIMIT, RunReport, tail_text
from backwatch.errors import InvalidInput, MalformedInput
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.ingest.tools._common import content_id, resolve_times
from backwatch.timeutil import human_bytes

TOOL = "duplicati"
STATUSES = {
    "success": RunStatus.SUCCESS,
    "warning": RunStatus.WARNING,
    "error": RunStatus.FAILED,
    "fatal": RunStatus.FAILED,
}
#: Duplicati operations that are runs, and their kind; the others are not recorded
KINDS = {"backup": "backup", "test": "check"}
#: top-level names that only a Duplicati result has: the text is a report
_RESULT_NAMES = {"ParsedResult", "MainOperation", "BeginTime", "ExaminedFiles"}
_HEADER = re.compile(
    r"^Duplicati (?P<op>\w+) report for (?P<name>.*?)"
    r"(?: \((?P<machine_id>[^,()]*), (?P<backup_id>[^,()]*), (?P<machine>[^()]*)\))?\s*$"
)
_FIELD = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*): ?(?P<value>.*)$")
_UNIX = re.compile(r"\((-?\d+)\)\s*$")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.(\d+))?$")
#: ``2026-12-05 02:01:04 +00:00 - [Warning-…-PathProcessingFailed]: `` before a log message
_LOG_PREFIX = re.compile(r"^\S+ \S+ \S+ - \[[^\]]*\]: ")


@dataclass
class Parsed:
    """What a report says, in the JSON shape whichever format it came in."""

    data: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    failure: str | None = None  # the exception that stopped the operation (its first line)
    details: str | None = None  # the exception in full


@dataclass
class Outcome:
    """The operation a report is about, and its run (None: not a run, ``reason`` says why)."""

    operation: str
    report: RunReport | None
    reason: str | None = None


def parse_duplicati(
    body: bytes,
    content_type: str | None,
    *,
    now: float,
    job: str | None = None,
    parameter: str = "message",
) -> Outcome:
    """A request Duplicati's ``--send-http-url`` sent → its run (MalformedInput when the
    body is no Duplicati report, InvalidInput naming the field when a value is wrong)."""
    text = body.decode("utf-8", "replace").lstrip("\ufeff")
    media = (content_type or "").split(";")[0].strip().lower()
    form = media == "application/x-www-form-urlencoded" or (
        not media.endswith("json") and text.startswith(f"{parameter}=")
    )
    if form:
        fields = urllib.parse.parse_qs(text, keep_blank_values=True)
        if parameter not in fields:
            sent = ", ".join(sorted(fields)) or "none"
            raise MalformedInput(
                f"the form has no {parameter!r} field (Duplicati's "
                f"--send-http-message-parameter-name; fields sent: {sent})"
            )
        text = fields[parameter][0]
    if not text.strip():
        raise MalformedInput("the report is empty; expected a Duplicati --send-http-url report")
    parsed = _from_json(text) if text.lstrip().startswith("{") else _from_text(text)
    return _outcome(parsed, text, job=job, now=now)


def _from_json(text: str) -> Parsed:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(obj, dict) or not ({"Data", "Exception"} & obj.keys()):
        raise MalformedInput(
            "not a Duplicati JSON report: expected an object with Data, Extra, LogLines and "
            "Exception (--send-http-result-output-format=Json)"
        )
    data, extra = obj.get("Data"), obj.get("Extra")
    if not isinstance(data, dict | None):
        raise InvalidInput.field("Data", "must be an object or null")
    if not isinstance(extra, dict | None):
        raise InvalidInput.field("Extra", "must be an object or null")
    log = obj.get("LogLines") or []
    if not isinstance(log, list):
        raise InvalidInput.field("LogLines", "must be a list of strings")
    exception = obj.get("Exception")
    if exception is not None and not isinstance(exception, str):
        raise InvalidInput.field("Exception", "must be a string or null")
    return Parsed(
        data or {},
        extra or {},
        [str(line) for line in log],
        failure=_first_line(exception),
        details=exception or None,
    )


def _from_text(text: str) -> Parsed:
    data: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    parsed = Parsed(data, extra)
    lines = text.splitlines()
    i = 0
    section: dict[str, Any] | None = None  # an object some versions print indented
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if not data and not extra and (m := _HEADER.match(line)):
            extra.update(
                {"OperationName": m["op"], "backup-name": m["name"].strip()}
                | ({"backup-id": m["backup_id"].strip()} if m["backup_id"] else {})
                | ({"machine-name": m["machine"].strip()} if m["machine"] else {})
            )
            continue
        if line == "Log data:":
            parsed.log = [entry for entry in lines[i:] if entry.strip()]
            break
        if line.startswith("Failed: ") and parsed.failure is None:
            parsed.failure = line[len("Failed: ") :].strip()
            details = []
            while i < len(lines) and lines[i].strip():
                details.append(lines[i].removeprefix("Details: "))
                i += 1
            parsed.details = "\n".join(details) or parsed.failure
            continue
        if line[0].isspace():
            m = _FIELD.match(line.strip())
            if section is not None and m:
                section[m["name"]] = _text_value(m["value"])
            continue
        m = _FIELD.match(line)
        if not m:
            continue
        name, value = m["name"], m["value"].strip()
        section = None
        if value == "[":  # a list: one indented item a line, up to "]"
            items = []
            while i < len(lines) and lines[i].strip() != "]":
                items.append(lines[i].strip().removesuffix(","))
                i += 1
            i += 1
            data[name] = items
        elif value == "[]":
            data[name] = []
        elif value == "":
            section = data[name] = {}
        else:
            data[name] = _text_value(value)
    if not (_RESULT_NAMES & data.keys()) and parsed.failure is None:
        raise MalformedInput(
            "not a Duplicati report: no ParsedResult, MainOperation or BeginTime line and no "
            "'Failed:' line (expected --send-http-result-output-format=Duplicati or Json)"
        )
    return parsed


def _text_value(value: str) -> Any:
    if value in ("True", "False"):
        return value == "True"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if m := _UNIX.search(value):  # a DateTime: "12/5/2026 2:00:03 AM (1796436003)"
        return float(m[1])
    return value


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    first = text.strip().splitlines()[0]
    # "System.Net.Http.HttpRequestException: Connection refused": the message, not the type
    m = re.match(r"^[\w.]+(?:Exception|Error): (.+)$", first)
    return m[1] if m else first


def _time(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if t.year <= 1:  # DateTime's zero value: never set (an operation that failed)
                return None
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise InvalidInput.field(f"Data.{name}", f"is not a time: {value!r}")


def _duration(data: dict[str, Any]) -> float | None:
    value = data.get("Duration")
    if value is None or value == "":
        return None
    m = _TIMESPAN.match(str(value))
    if not m:
        raise InvalidInput.field("Data.Duration", f"is not a duration (d.hh:mm:ss): {value!r}")
    days, hours, minutes, secs, frac = m.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(secs)
    seconds = total + (float(f"0.{frac}") if frac else 0.0)
    return seconds if seconds > 0 else None


def _count(obj: dict[str, Any], name: str, where: str = "Data") -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput.field(f"{where}.{name}", "must be a non-negative number")
    return int(value)


def _job(job: str | None, extra: dict[str, Any]) -> str:
    if job is not None:
        if not JOB_ID_RE.match(job):
            raise InvalidInput.field("job", JOB_ID_PROBLEM)
        return job
    name = str(extra.get("backup-name") or "")
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")[:64]
    if not slug:
        raise InvalidInput.field(
            "job", "the report names no backup: add ?job=<job> to Duplicati's --send-http-url"
        )
    return slug


def _status(parsed: Parsed) -> tuple[RunStatus, str | None]:
    result = parsed.data.get("ParsedResult") or parsed.extra.get("ParsedResult")
    if parsed.failure is not None:
        result = "Fatal"
    status = STATUSES.get(str(result or "").lower(), RunStatus.UNKNOWN)
    if parsed.data.get("Interrupted") is True and status is not RunStatus.FAILED:
        status = RunStatus.CANCELLED
    return status, str(result) if result else None


def _outcome(parsed: Parsed, text: str, *, job: str | None, now: float) -> Outcome:
    data, extra = parsed.data, parsed.extra
    operation = str(data.get("MainOperation") or extra.get("OperationName") or "Backup")
    kind = KINDS.get(operation.lower())
    if kind is None:
        return Outcome(operation, None, f"a Duplicati {operation} operation is not a backup")
    if data.get("Dryrun") is True:
        return Outcome(operation, None, "a dry run stores no backup")
    job_id = _job(job, extra)
    status, result = _status(parsed)
    backend = data.get("BackendStatistics")
    backend = backend if isinstance(backend, dict) else {}
    begin, end = _time(data, "BeginTime"), _time(data, "EndTime")
    start, finish, duration = resolve_times(
        started_at=None, finished_at=None, duration=_duration(data) if end else None,
        tool_start=begin, tool_end=end, now=now,
    )  # fmt: skip
    # an operation an exception stopped measured nothing: its zeros are not figures
    measured = parsed.failure is None
    figures = {
        "size_bytes": _count(data, "SizeOfExaminedFiles"),
        "files": _count(data, "ExaminedFiles"),
        "files_new": _count(data, "AddedFiles"),
        "files_changed": _count(data, "ModifiedFiles"),
        "bytes_added": _count(backend, "BytesUploaded", "Data.BackendStatistics"),
    }
    if not measured or kind != "backup":
        figures = dict.fromkeys(figures)
    stats: dict[str, Any] = {"operation": operation, "parsed_result": result}
    for key, source, name in (
        ("size_of_added_files", data, "SizeOfAddedFiles"),
        ("size_of_modified_files", data, "SizeOfModifiedFiles"),
        ("files_with_error", data, "FilesWithError"),
        ("warnings", data, "WarningsActualLength"),
        ("errors", data, "ErrorsActualLength"),
        ("known_file_size", backend, "KnownFileSize"),
        ("known_file_count", backend, "KnownFileCount"),
        ("backup_versions", backend, "BackupListCount"),
        ("files_uploaded", backend, "FilesUploaded"),
    ):
        if measured and isinstance(source.get(name), int) and source[name] >= 0:
            stats[key] = source[name]
    for key, name in (("partial_backup", "PartialBackup"), ("interrupted", "Interrupted")):
        if data.get(name) is True:
            stats[key] = True
    if extra.get("backup-id"):
        stats["duplicati_backup_id"] = str(extra["backup-id"])
    if data.get("Version"):
        stats["duplicati_version"] = str(data["Version"])
    verify = _verify(data, kind, status)
    if verify is not None:
        stats["verify"] = verify
    host = extra.get("machine-name")
    log_lines = ([parsed.details] if parsed.details else []) + parsed.log
    report = RunReport(
        job=job_id,
        status=status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        host=str(host)[:255] if host else None,
        message=_message(parsed, operation, status, figures)[:MESSAGE_LIMIT],
        log=tail_text("\n".join(log_lines)) if log_lines else None,
        tool=TOOL,
        stats=stats,
        kind=kind,
        backup_id=_run_key(job_id, extra, begin, text, start, finish),
        size_bytes=figures["size_bytes"],
        files=figures["files"],
        files_new=figures["files_new"],
        files_changed=figures["files_changed"],
        bytes_added=figures["bytes_added"],
    )
    return Outcome(operation, report)


def _verify(data: dict[str, Any], kind: str, status: RunStatus) -> str | None:
    """A Test operation is a check; a backup's own test of the uploaded volumes
    (``TestResults``, after every backup unless ``--backup-test-samples=0``) counts too."""
    if kind == "check":
        return "ok" if status is RunStatus.SUCCESS else None
    tests = data.get("TestResults")
    if not isinstance(tests, dict):
        return None
    result = str(tests.get("ParsedResult") or "").lower()
    return {"success": "ok", "error": "failed", "fatal": "failed"}.get(result)


def _message(
    parsed: Parsed, operation: str, status: RunStatus, figures: dict[str, int | None]
) -> str:
    if parsed.failure:
        return f"Duplicati {operation} failed: {parsed.failure}"
    for name in ("LimitedErrors", "LimitedWarnings"):
        items = parsed.data.get(name)
        if isinstance(items, list) and items and status is not RunStatus.SUCCESS:
            first = _LOG_PREFIX.sub("", str(items[0]))
            more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
            return f"Duplicati {operation} {status.value}: {first}{more}"
    if status is RunStatus.UNKNOWN:
        return f"Duplicati {operation}: the report states no result"
    if figures["files"] is None:
        return f"Duplicati {operation}: {status.value}"

    def n(value: int | None) -> str:
        return "?" if value is None else str(value)

    uploaded = figures["bytes_added"]
    return (
        f"Duplicati {operation}: {n(figures['files'])} files ({n(figures['files_new'])} new, "
        f"{n(figures['files_changed'])} changed), {human_bytes(figures['size_bytes'])} examined"
        + (f", {human_bytes(uploaded)} uploaded" if uploaded is not None else "")
    )


def _run_key(
    job: str, extra: dict[str, Any], begin: float | None, text: str, start: float, finish: float
) -> str:
    """The same run's report, sent again (Duplicati retries) or in the other format (a
    form URL and a JSON URL both set), is one run: job, backup and start second."""
    if begin is None:
        return content_id(TOOL, job, text, start, finish)
    key = f"{job}\0{extra.get('backup-id') or ''}\0{int(begin)}"
    return f"{TOOL}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
