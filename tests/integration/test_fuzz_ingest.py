"""Issue 14: no report can break a view. Arbitrary JSON and arbitrary text lines thrown at
every ingest format (the native report and seed 001 records over HTTP, JSONL lines and the
tools' output through ``backwatch import``, status files, the lifecycle calls, ping bodies),
against one real in-process app on a real SQLite file: nothing answers 5xx or crashes the
command, and afterwards every read view, every stored run's pages and the CLI's ``status``
and ``history`` still answer.

Hypothesis, bounded (``max_examples`` per format, no deadline), so the module takes about
a minute; the values lean on the edges (times near 9999, durations up to 1e308, sizes
past 2^63, NUL and lone surrogates in text and keys).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backwatch.cli import app as cli_app
from backwatch.errors import BackwatchError
from backwatch.ingest.status_file import parse_status_text
from backwatch.services.status_dirs import apply_status_file
from tests.conftest import make_settings

EXAMPLES = 120
#: each ``backwatch import`` opens the database anew (~0.3 s): fewer examples, same edges
CLI_EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JOBS = ("fz", "fz-two", "nightly")

# -- values at the edges ---------------------------------------------------------------------

#: any character, NUL and lone surrogates included
chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
text = st.text(chars, max_size=12)
edge_numbers = st.sampled_from(
    [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, 1e308, -1e308, 3.2e9, 0.5,
     253_402_300_799, 247_090_953_599, 247_090_953_600, 1e12]
)  # fmt: skip
numbers = st.one_of(
    edge_numbers,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
times = st.one_of(
    numbers,
    st.sampled_from(
        ["9999-12-31T23:59:59Z", "9999-12-31T00:00:00Z", "9799-12-31T23:59:59Z",
         "9800-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
         "2026-05-01T02:00:00Z", "2026-05-01T02:00:00+14:00", "0001-01-01T00:00:00", ""]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    text,
)  # fmt: skip
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
statuses = st.one_of(
    st.sampled_from(["success", "failed", "warning", "running", "queued", "skipped",
                     "cancelled", "timed_out", "unknown", "ok", "done"]),
    text,
)  # fmt: skip
jobs = st.one_of(st.sampled_from(JOBS), text)
phase_names = st.one_of(st.sampled_from(["dump", "upload", "verify"]), text)
good_times = st.one_of(
    st.floats(min_value=0, max_value=247_090_953_599),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9799, 12, 30)).map(
        lambda d: d.isoformat() + "Z"
    ),
)
good_counts = st.integers(min_value=0, max_value=2**63 - 1)
good_seconds = st.floats(min_value=0, max_value=3e9)
good_statuses = st.sampled_from(["success", "failed", "warning", "skipped", "cancelled"])
good_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/"),
                   min_size=1, max_size=24)  # fmt: skip


def some(edgy: st.SearchStrategy[Any], good: st.SearchStrategy[Any] | None = None) -> Any:
    """Mostly a value that should pass (``good``, else ``edgy``), sometimes one from the
    field's edges, sometimes any JSON at all: most reports get stored, the rest probe the
    checks."""
    ok = edgy if good is None else good
    kinds = {"ok": ok, "edgy": edgy, "json": json_values}
    return st.sampled_from(["ok"] * 8 + ["edgy", "json"]).flatmap(kinds.__getitem__)


def with_unknown_fields(known: dict[str, Any]) -> Any:
    return st.dictionaries(text, json_values, max_size=2).map(lambda extra: extra | known)


phase_objects = st.fixed_dictionaries(
    {"name": some(phase_names)},
    optional={
        "duration_s": some(numbers, good_seconds),
        "started_at": some(times, good_times),
        "finished_at": some(times, good_times),
        "status": some(statuses, good_statuses),
    },
)
native_reports = st.fixed_dictionaries(
    {
        "job": some(jobs, st.sampled_from(JOBS)),
        "status": some(statuses, good_statuses),
        "started_at": some(times, good_times),
    },
    optional={
        "id": some(text, good_ids),
        "finished_at": some(times, good_times),
        "duration_s": some(numbers, good_seconds),
        "size_bytes": some(numbers, good_counts),
        "files": some(numbers, good_counts),
        "files_new": some(numbers, good_counts),
        "bytes_added": some(numbers, good_counts),
        "exit_code": some(numbers, st.integers(-255, 255)),
        "message": some(text),
        "log": some(text),
        "tool": some(text),
        "host": some(text),
        "stats": some(st.dictionaries(text, json_values, max_size=4)),
        "phases": some(
            st.one_of(
                st.dictionaries(phase_names, some(numbers, good_seconds), max_size=3),
                st.lists(phase_objects, max_size=3),
            )
        ),
        "trigger": some(st.sampled_from(["api", "schedule", "manual"])),
    },
).flatmap(with_unknown_fields)
seed001_records = st.fixed_dictionaries(
    {
        "timestamp": some(times, good_times),
        "backup_id": some(text, good_ids),
        "success": some(st.booleans()),
    },
    optional={
        "duration_total": some(numbers, good_seconds),
        "duration_upload": some(numbers, good_seconds),
        "duration_dump": some(numbers, good_seconds),
        "size_bytes": some(numbers, good_counts),
        "job": some(jobs, st.sampled_from(JOBS)),
        "message": some(text),
        "host": some(text),
    },
).flatmap(with_unknown_fields)
status_files = st.fixed_dictionaries(
    {
        "service": some(text, st.sampled_from(JOBS)),
        "status": some(statuses, good_statuses),
        "start_time": some(times, good_times),
    },
    optional={
        "end_time": some(times, good_times),
        "duration_seconds": some(st.one_of(numbers, text), good_seconds),
        "files_processed": some(st.one_of(numbers, numbers.map(str)), good_counts),
        "total_size_bytes": some(st.one_of(numbers, numbers.map(str)), good_counts),
        "message": some(text),
        "description": some(text),
        "backup_path": some(text),
        "hostname": some(text),
        "run_id": some(text),
    },
)
lines = st.lists(st.one_of(text, json_values.map(json.dumps)), min_size=1, max_size=5)


# -- the app ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app

    tmp = tmp_path_factory.mktemp("fuzz")
    db = f"sqlite:///{tmp / 'backwatch.db'}"
    s = make_settings(tmp / "data", db)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        client.auth_headers = {"Authorization": f"Bearer {s.token_file.read_text().strip()}"}  # type: ignore[attr-defined]
        client.db = db  # type: ignore[attr-defined]
        client.tmp = tmp  # type: ignore[attr-defined]
        yield client


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "cli-data"))


def answered(response: Any) -> Any:
    """Any answer but a server error, in the error envelope when it is one."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        assert set(response.json()) == {"error"}, response.text[:500]
    return response


def send(api: Any, method: str, url: str, body: Any = None, **kw: Any) -> Any:
    content = None if body is None else json.dumps(body)  # lone surrogates as \\u escapes
    return answered(api.request(method, url, content=content, headers=api.auth_headers, **kw))


def cli(api: Any, *args: str) -> Any:
    result = CliRunner().invoke(cli_app, [*args, "--db", api.db])
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result


def views_answer(api: Any) -> None:
    """Every read view, the pages of every job and of the newest stored runs, and the CLI."""
    for url in ("/api/v1/jobs", "/api/v1/runs?limit=200", "/", "/api/v1/summary", "/metrics",
                "/api/metrics", "/api/v1/events", "/alerts"):  # fmt: skip
        response = api.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        response.content.decode("utf-8")
    job_ids = [j["id"] for j in api.get("/api/v1/jobs").json()["items"]]
    for job in job_ids:  # job ids are slugs: no quoting needed
        for url in (f"/api/v1/jobs/{job}", f"/jobs/{job}", f"/api/v1/jobs/{job}/analysis",
                    f"/api/v1/summary?job={job}", f"/api/v1/runs?job={job}"):  # fmt: skip
            response = api.get(url)
            assert response.status_code == 200, (url, response.text[:500])
    runs = api.get("/api/v1/runs?limit=60").json()["items"]
    for run in runs:
        run_id = quote(run["id"], safe="")
        for url in (f"/api/v1/runs/{run_id}", f"/runs/{run_id}"):
            response = api.get(url)
            assert response.status_code == 200, (url, response.text[:500])
    assert cli(api, "status").exit_code == 0
    for job in job_ids[:2]:
        assert cli(api, "history", job, "--json").exit_code == 0


# -- one test per format ---------------------------------------------------------------------


def test_native_reports_over_http(fuzz):
    @FUZZ
    @given(body=st.one_of(native_reports, json_values, st.lists(native_reports, max_size=3)))
    def run(body: Any) -> None:
        send(fuzz, "POST", "/api/v1/runs", body)

    run()
    views_answer(fuzz)


def test_seed001_records_over_http(fuzz):
    @FUZZ
    @given(body=seed001_records)
    def run(body: Any) -> None:
        send(fuzz, "POST", "/api/v1/runs", body)

    run()
    views_answer(fuzz)


def test_jsonl_lines_through_import(fuzz):
    @settings(FUZZ, max_examples=CLI_EXAMPLES)
    @given(records=st.lists(st.one_of(seed001_records, native_reports), max_size=4), junk=lines)
    def run(records: list[Any], junk: list[str]) -> None:
        path = fuzz.tmp / "metrics.jsonl"
        rows = [json.dumps(r) for r in records] + [line.replace("\n", " ") for line in junk]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8", errors="surrogatepass")
        cli(fuzz, "import", str(path))

    run()
    views_answer(fuzz)


def test_status_files(fuzz):
    hub = fuzz.app.state.hub

    @FUZZ
    @given(obj=st.one_of(status_files, json_values), junk=text)
    def run(obj: Any, junk: str) -> None:
        for raw in (json.dumps(obj), junk):
            try:
                parsed = parse_status_text(raw, file_name="fz_status.json", mtime=hub.now())
                hub.write(apply_status_file(parsed, hub.now()))
            except BackwatchError:
                pass  # refused, naming the problem: what a bad file gets

    run()
    views_answer(fuzz)


def test_lifecycle_calls(fuzz):
    @FUZZ
    @given(
        start=st.one_of(
            st.fixed_dictionaries({"job": st.sampled_from(JOBS)},
                                  optional={"started_at": some(times, good_times),
                                            "message": some(text)}),
            json_values,
        ),
        phases=st.lists(
            st.fixed_dictionaries(
                {"name": some(phase_names)},
                optional={"event": some(st.sampled_from(["start", "end", "record"])),
                          "at": some(times, good_times),
                          "duration_s": some(numbers, good_seconds)},
            ),
            max_size=3,
        ),
        files=st.lists(
            st.fixed_dictionaries({"path": some(text)},
                                  optional={"size": some(numbers, st.integers(0, 2**40)),
                                            "status": some(text)}),
            max_size=3,
        ),
        finish=st.fixed_dictionaries(
            {"status": some(statuses, good_statuses)},
            optional={"finished_at": some(times, good_times),
                      "duration_s": some(numbers, good_seconds),
                      "size_bytes": some(numbers, good_counts), "stats": some(json_values),
                      "message": some(text), "log": some(text)},
        ),
    )  # fmt: skip
    def run(start: Any, phases: list[Any], files: list[Any], finish: Any) -> None:
        started = send(fuzz, "POST", "/api/v1/runs/start", start)
        run_id = started.json()["id"] if started.status_code < 300 else "no-such-run"
        base = f"/api/v1/runs/{run_id}"
        for phase in phases:
            send(fuzz, "POST", base + "/phases", phase)
        if files:
            send(fuzz, "POST", base + "/files", {"files": files})
        send(fuzz, "POST", base + "/status", {"message": finish.get("message")})
        send(fuzz, "POST", base + "/finish", finish)

    run()
    views_answer(fuzz)


def test_ping_bodies(fuzz):
    key = fuzz.get("/api/v1/ping-key", headers=fuzz.auth_headers).json()["ping_key"]

    @FUZZ
    @given(
        job=st.sampled_from(JOBS),
        action=st.sampled_from(["", "/start", "/fail", "/log", "/0", "/3", "/255", "/256"]),
        body=st.one_of(st.binary(max_size=200), text.map(lambda s: s.encode("utf-8", "replace"))),
        rid=st.one_of(st.none(), st.uuids().map(str), text),
    )
    def run(job: str, action: str, body: bytes, rid: str | None) -> None:
        params = {"create": "1"} | ({"rid": rid} if rid is not None else {})
        answered(fuzz.post(f"/ping/{key}/{job}{action}", content=body, params=params))

    run()
    views_answer(fuzz)


TOOL_LINES = {
    "restic": st.one_of(
        st.fixed_dictionaries(
            {"message_type": st.sampled_from(["summary", "status", "error", "verbose_status"])},
            optional={
                "files_new": some(numbers), "files_changed": some(numbers),
                "files_unmodified": some(numbers), "total_files_processed": some(numbers),
                "total_bytes_processed": some(numbers), "data_added": some(numbers),
                "total_duration": some(numbers), "snapshot_id": some(text),
                "backup_start": some(times), "backup_end": some(times),
                "percent_done": some(numbers),
            },
        ).map(json.dumps),
        text,
    ),
    "borg": st.fixed_dictionaries(
        {"archive": some(st.fixed_dictionaries(
            {"name": some(text)},
            optional={"start": some(times), "end": some(times), "duration": some(numbers),
                      "stats": some(st.dictionaries(
                          st.sampled_from(["original_size", "compressed_size",
                                           "deduplicated_size", "nfiles"]),
                          numbers))},
        ))},
        optional={"repository": json_values, "cache": json_values},
    ).map(json.dumps),
    "rsync": st.one_of(
        st.tuples(
            st.sampled_from(["Number of files", "Number of regular files transferred",
                             "Total file size", "Total transferred file size",
                             "Total bytes sent", "Number of created files"]),
            st.one_of(numbers.map(str), text),
        ).map(lambda kv: f"{kv[0]}: {kv[1]}"),
        text,
    ),
}  # fmt: skip


@pytest.mark.parametrize("tool", sorted(TOOL_LINES))
def test_tool_output_through_import(fuzz, tool):
    @settings(FUZZ, max_examples=CLI_EXAMPLES)
    @given(
        output=st.lists(TOOL_LINES[tool], min_size=0, max_size=6),
        exit_code=st.sampled_from([None, "0", "1", "3", "255"]),
    )
    def run(output: list[str], exit_code: str | None) -> None:
        path = fuzz.tmp / f"{tool}.out"
        body = "\n".join(line.replace("\n", " ") for line in output) + "\n"
        path.write_text(body, encoding="utf-8", errors="surrogatepass")
        extra = ["--exit-code", exit_code] if exit_code is not None else []
        cli(fuzz, "import", "--format", tool, "--job", "fz-tools", *extra, str(path))

    run()
    views_answer(fuzz)
