"""Ingest parsers: the native report, the seed 001 JSONL record, the lifecycle bodies.

Every bad input is refused with InvalidInput naming the field; nothing else ever escapes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backwatch.domain.lifecycle import RunStatus
from backwatch.errors import BackwatchError, InvalidInput
from backwatch.ingest import parse_record
from backwatch.ingest.lifecycle import parse_files, parse_finish, parse_phase_event, parse_start

# The sample line of seed 001's README, as a backup script writes it.
SEED_LINE = (
    '{"timestamp": "2026-01-07T02:00:00-08:00", "backup_id": "2026-01-07_020000", '
    '"success": true, "duration_total": 1265, "duration_snapshot": 5, '
    '"duration_archive": 318, "duration_volumes": 485, "duration_upload": 457, '
    '"size_bytes": 2912345678}'
)
SEED_START = datetime(2026, 1, 7, 10, 0, tzinfo=UTC).timestamp()

NATIVE = {
    "id": "nightly-2026-05-01",
    "job": "nightly",
    "host": "nas",
    "status": "success",
    "started_at": "2026-05-01T02:00:00Z",
    "finished_at": "2026-05-01T02:10:00Z",
    "size_bytes": 1000,
    "files": 10,
    "files_new": 2,
    "files_changed": 1,
    "bytes_added": 100,
    "exit_code": 0,
    "message": "ok",
    "log": "done\n",
    "tool": "restic",
    "stats": {"dedup_ratio": 2.5},
    "phases": [{"name": "snapshot", "duration_s": 60}, {"name": "upload", "duration_s": 540}],
}


def invalid(obj, **kw) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        parse_record(obj, **kw)
    return err.value


def fields_of(err: InvalidInput) -> list[str]:
    return [d["field"] for d in err.details]


class TestSeed001:
    def test_the_sample_line(self):
        report = parse_record(json.loads(SEED_LINE))
        assert report.job == "backup"  # the configured default job
        assert report.status is RunStatus.SUCCESS
        assert report.backup_id == "2026-01-07_020000"
        assert report.started_at == SEED_START  # timestamp is the start
        assert report.duration_s == 1265
        assert report.finished_at == SEED_START + 1265
        assert report.size_bytes == 2912345678
        assert [(p.name, p.duration_s) for p in report.phases] == [
            ("snapshot", 5),
            ("archive", 318),
            ("volumes", 485),
            ("upload", 457),
        ]

    def test_default_job_and_own_job(self):
        record = json.loads(SEED_LINE)
        assert parse_record(record, default_job="homelab").job == "homelab"
        assert parse_record({**record, "job": "nas"}, default_job="homelab").job == "nas"

    def test_failure(self):
        assert parse_record({**json.loads(SEED_LINE), "success": False}).status is RunStatus.FAILED

    def test_total_from_the_phases_when_missing(self):
        record = json.loads(SEED_LINE)
        del record["duration_total"]
        assert parse_record(record).duration_s == 5 + 318 + 485 + 457

    def test_unknown_fields_are_kept(self):
        report = parse_record({**json.loads(SEED_LINE), "hostname": "nas", "retries": 2})
        assert report.stats == {"extra": {"hostname": "nas", "retries": 2}}

    def test_seed001_without_success_is_told_so(self):
        record = json.loads(SEED_LINE)
        del record["success"]
        err = invalid(record)
        assert fields_of(err) == ["success"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"success": "true"}, "success"),
            ({"success": 1}, "success"),
            ({"timestamp": "yesterday"}, "timestamp"),
            ({"timestamp": True}, "timestamp"),
            ({"timestamp": -5}, "timestamp"),
            ({"backup_id": ""}, "backup_id"),
            ({"backup_id": 7}, "backup_id"),
            ({"duration_total": -1}, "duration_total"),
            ({"duration_total": "1265"}, "duration_total"),
            ({"duration_total": True}, "duration_total"),
            ({"size_bytes": -1}, "size_bytes"),
            ({"size_bytes": 1.5}, "size_bytes"),
            ({"size_bytes": True}, "size_bytes"),
            ({"size_bytes": 2**64}, "size_bytes"),
            ({"duration_upload": -3}, "duration_upload"),
            ({"duration_upload": "3"}, "duration_upload"),
            ({"duration_upload": False}, "duration_upload"),
            ({"duration_": 3}, "duration_"),
            ({"duration_" + "x" * 65: 3}, "duration_" + "x" * 65),
            ({"job": "Not A Slug"}, "job"),
            ({"host": "h" * 256}, "host"),
        ],
    )
    def test_bad_records_name_the_field(self, change, field):
        err = invalid({**json.loads(SEED_LINE), **change})
        assert field in fields_of(err)
        assert field in err.message


class TestNative:
    def test_full_report(self):
        report = parse_record(NATIVE)
        assert report.id == "nightly-2026-05-01"
        assert report.job == "nightly"
        assert report.status is RunStatus.SUCCESS
        assert report.duration_s == 600
        assert report.files_new == 2
        assert report.stats == {"dedup_ratio": 2.5}
        assert [p.name for p in report.phases] == ["snapshot", "upload"]
        assert report.trigger == "api"

    def test_phases_as_an_object_keep_their_order(self):
        report = parse_record({**NATIVE, "phases": {"dump": 30, "compress": 12.5, "upload": 90}})
        assert [(p.name, p.duration_s) for p in report.phases] == [
            ("dump", 30),
            ("compress", 12.5),
            ("upload", 90),
        ]

    def test_finished_at_from_duration(self):
        report = parse_record(
            {"job": "a", "status": "failed", "started_at": 1000, "duration_s": 30}
        )
        assert report.finished_at == 1030

    def test_a_running_report_has_no_finish(self):
        report = parse_record({"job": "a", "status": "running", "started_at": 1000})
        assert report.status is RunStatus.RUNNING
        assert report.finished_at is None

    def test_unknown_fields_are_kept_in_stats_extra(self):
        report = parse_record({**NATIVE, "compression": "zstd", "snapshot": {"id": "ab12"}})
        assert report.stats == {
            "dedup_ratio": 2.5,
            "extra": {"compression": "zstd", "snapshot": {"id": "ab12"}},
        }

    def test_status_is_case_insensitive(self):
        assert parse_record({**NATIVE, "status": "Warning"}).status is RunStatus.WARNING

    def test_the_log_keeps_its_last_100_kb(self):
        log = "x" * 200_000 + "THE END"
        report = parse_record({**NATIVE, "log": log})
        assert report.log is not None
        assert len(report.log.encode()) == 100 * 1024
        assert report.log.endswith("THE END")

    @pytest.mark.parametrize(
        ("change", "field", "words"),
        [
            ({"status": "ok"}, "status", "unknown status"),
            ({"status": 1}, "status", "string"),
            ({"job": "Nightly"}, "job", "slug"),
            ({"job": "-x"}, "job", "slug"),
            ({"job": "a" * 65}, "job", "slug"),
            ({"job": 5}, "job", "string"),
            ({"id": "a/b"}, "id", "'/'"),
            ({"id": ""}, "id", "printable"),
            ({"id": 12}, "id", "string"),
            ({"started_at": "soon"}, "started_at", "ISO 8601"),
            ({"started_at": True}, "started_at", "ISO 8601"),
            ({"started_at": None}, "started_at", "ISO 8601"),
            ({"started_at": [2026]}, "started_at", "ISO 8601"),
            ({"started_at": 1e30}, "started_at", "out of range"),
            ({"finished_at": "2026-05-01T01:00:00Z"}, "finished_at", "before"),
            ({"duration_s": -1}, "duration_s", "negative"),
            ({"duration_s": "600"}, "duration_s", "number"),
            ({"duration_s": True}, "duration_s", "number"),
            ({"size_bytes": -1}, "size_bytes", "negative"),
            ({"size_bytes": "1000"}, "size_bytes", "whole number"),
            ({"size_bytes": True}, "size_bytes", "whole number"),
            ({"size_bytes": 1.5}, "size_bytes", "whole number"),
            ({"size_bytes": 2**63}, "size_bytes", "at most"),
            ({"files": -2}, "files", "negative"),
            ({"files_new": False}, "files_new", "whole number"),
            ({"bytes_added": -5}, "bytes_added", "negative"),
            ({"exit_code": 256}, "exit_code", "255"),
            ({"exit_code": "0"}, "exit_code", "whole number"),
            ({"message": 5}, "message", "string"),
            ({"stats": [1]}, "stats", "object"),
            ({"trigger": "cron"}, "trigger", "schedule"),
            ({"tool": "t" * 65}, "tool", "too long"),
            ({"host": "h" * 256}, "host", "too long"),
            ({"phases": "snapshot"}, "phases", "list of phases"),
            ({"phases": [{"duration_s": 5}]}, "phases[0].name", "required"),
            ({"phases": [{"name": "a", "duration_s": -5}]}, "phases[0].duration_s", "negative"),
            ({"phases": [{"name": "a", "status": "meh"}]}, "phases[0].status", "unknown status"),
            ({"phases": [{"name": "a", "started_at": "x"}]}, "phases[0].started_at", "ISO"),
            (
                {"phases": [{"name": "a", "started_at": 20, "finished_at": 10}]},
                "phases[0].finished_at",
                "before",
            ),
            ({"phases": {"upload": -1}}, "phases.upload", "negative"),
            ({"phases": {"upload": "1"}}, "phases.upload", "number"),
            ({"phases": {"x" * 65: 1}}, "phases." + "x" * 65, "too long"),
        ],
    )
    def test_bad_reports_name_the_field(self, change, field, words):
        err = invalid({**NATIVE, **change})
        assert field in fields_of(err), err.details
        problem = next(d["problem"] for d in err.details if d["field"] == field)
        assert words in problem or words in err.message
        assert err.status == 422

    @pytest.mark.parametrize("missing", ["status", "started_at"])
    def test_required_fields(self, missing):
        report = {k: v for k, v in NATIVE.items() if k != missing}
        if missing == "status":
            report.pop("id")  # else it could pass for another format
        err = invalid(report)
        assert missing in fields_of(err)

    def test_job_is_required(self):
        err = invalid({"status": "success", "started_at": 0}, default_job="")
        assert fields_of(err) == ["job"]

    def test_all_problems_at_once(self):
        err = invalid({**NATIVE, "size_bytes": -1, "duration_s": "long", "status": "nope"})
        assert {"size_bytes", "duration_s", "status"} <= set(fields_of(err))

    @pytest.mark.parametrize("body", [[], "report", 5, None, True])
    def test_not_an_object(self, body):
        err = invalid(body)
        assert "JSON object" in err.message


class TestLifecycleBodies:
    def test_start(self):
        report = parse_start({"job": "nightly", "host": "nas"}, now=1000.0)
        assert report.status is RunStatus.RUNNING
        assert report.started_at == 1000.0
        assert parse_start({"job": "a", "started_at": 5}, now=1000.0).started_at == 5

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"job": "No"}, "job"),
            ({}, "job"),
            ({"job": "a", "status": "success"}, "status"),
            ({"job": "a", "started_at": "never"}, "started_at"),
            ({"job": "a", "colour": "red"}, "colour"),
            ({"job": "a", "trigger": "x" * 40}, "trigger"),
        ],
    )
    def test_bad_start(self, body, field):
        with pytest.raises(InvalidInput) as err:
            parse_start(body, now=0.0)
        assert field in fields_of(err.value)

    def test_finish(self):
        status, fields, phases, log = parse_finish(
            {
                "status": "failed",
                "exit_code": 3,
                "finished_at": "2026-05-01T02:00:00Z",
                "phases": {"upload": 5},
                "log": "boom",
            }
        )
        assert status is RunStatus.FAILED
        assert fields["exit_code"] == 3
        assert fields["finished_at"] == datetime(2026, 5, 1, 2, tzinfo=UTC).timestamp()
        assert [p.name for p in phases] == ["upload"]
        assert log == "boom"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"status": "running"}, "status"),
            ({"status": "bogus"}, "status"),
            ({}, "status"),
            ({"status": "success", "size_bytes": -1}, "size_bytes"),
            ({"status": "success", "duration_s": -0.5}, "duration_s"),
            ({"status": "success", "finished_at": False}, "finished_at"),
            ({"status": "success", "phases": [{"name": "a", "started_at": "?"}]}, "phases"),
            ({"status": "success", "stats": {"ratio": float("nan")}}, "stats"),
        ],
    )
    def test_bad_finish(self, body, field):
        with pytest.raises(InvalidInput) as err:
            parse_finish(body)
        assert any(f.startswith(field) for f in fields_of(err.value)), err.value.details

    def test_phase_events(self):
        body = parse_phase_event({"name": "upload", "event": "start"})
        assert (body.name, body.event) == ("upload", "start")
        for bad, field in [
            ({"name": ""}, "name"),
            ({"name": "a", "event": "pause"}, "event"),
            ({"name": "a", "at": "later"}, "at"),
            ({"name": "a", "duration_s": -1}, "duration_s"),
        ]:
            with pytest.raises(InvalidInput) as err:
                parse_phase_event(bad)
            assert fields_of(err.value) == [field]

    def test_files(self):
        assert parse_files({"path": "/a", "size": 3}) == [
            {"path": "/a", "size": 3, "status": "success"}
        ]
        assert len(parse_files({"files": [{"path": "/a"}, {"path": "/b"}]})) == 2
        for bad, field in [
            ({"path": ""}, "files[0].path"),
            ({"path": "/a", "size": -1}, "files[0].size"),
            ({"path": "/a", "status": "x" * 17}, "files[0].status"),
            ({"files": "all"}, "files"),
        ]:
            with pytest.raises(InvalidInput) as err:
                parse_files(bad)
            assert fields_of(err.value) == [field]


# -- fuzzing: any JSON value gives a RunReport or a BackwatchError, never anything else --

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = [
    "id", "job", "host", "status", "started_at", "finished_at", "duration_s", "exit_code",
    "size_bytes", "files", "files_new", "bytes_added", "message", "log", "tool", "stats",
    "phases", "backup_id", "trigger", "timestamp", "success", "duration_total",
    "duration_upload", "duration_", "size",
]  # fmt: skip
plausible = st.fixed_dictionaries(
    {},
    optional={
        name: json_values
        | st.sampled_from(["success", "failed", "nightly", "2026-05-01T02:00:00Z", "", "-1"])
        | st.integers(min_value=-10, max_value=2_000_000_000)
        for name in FIELD_NAMES
    },
)


def _accepts_or_refuses(value) -> None:
    try:
        report = parse_record(value)
    except BackwatchError as exc:
        assert exc.message
        assert 400 <= exc.status < 500
        return
    # whatever is accepted must be storable and printable
    assert report.started_at >= 0
    assert report.finished_at is None or report.finished_at >= report.started_at
    assert report.size_bytes is None or 0 <= report.size_bytes < 2**63
    json.dumps(report.stats, allow_nan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_any_json_value(value):
    _accepts_or_refuses(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible)
def test_fuzz_report_shaped_objects(value):
    _accepts_or_refuses(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(NATIVE)), json_values, max_size=6))
def test_fuzz_native_reports_with_broken_fields(changes):
    _accepts_or_refuses({**NATIVE, **changes})


LIFECYCLE_FIELDS = [
    "job", "status", "started_at", "finished_at", "duration_s", "size_bytes", "phases",
    "stats", "name", "event", "at", "path", "size", "files", "message", "trigger",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([parse_finish, parse_start, parse_phase_event, parse_files]),
    st.dictionaries(st.sampled_from(LIFECYCLE_FIELDS), json_values | st.sampled_from(
        ["success", "nightly", "start", "2026-05-01T02:00:00Z", "/etc/hosts"]
    ), max_size=5),
)  # fmt: skip
def test_fuzz_lifecycle_bodies(parse, body):
    try:
        parse(body, now=0.0) if parse is parse_start else parse(body)
    except BackwatchError as exc:
        assert 400 <= exc.status < 500
