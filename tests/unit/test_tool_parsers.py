"""restic, borg and rsync output → RunReport, on literal output of the real tools.

The restic 0.14 and borg 1.2 fixtures were printed by Debian's restic 0.14.0 and borg 1.2.4;
the restic 0.17 fixture follows restic's doc/075_scripting (0.17 adds ``backup_start``,
``backup_end``, ``data_added_packed``, ``seconds_elapsed``, ``error.message`` and
``exit_error``), with one field no restic prints, to show unknown fields are kept.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from backwatch.domain.lifecycle import RunStatus
from backwatch.errors import InvalidInput
from backwatch.ingest.tools import borg, parse_tool_output, register_tool, restic, rsync, tool_names

NOW = 1_790_000_000.0

RESTIC_014 = """\
{"message_type":"status","percent_done":0,"total_files":1,"total_bytes":1000}
{"message_type":"status","percent_done":0.48,"total_files":21,"files_done":10,"total_bytes":210003,"bytes_done":100000}
{"message_type":"summary","files_new":21,"files_changed":0,"files_unmodified":0,"dirs_new":2,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":21,"tree_blobs":3,"data_added":217900,"total_files_processed":21,"total_bytes_processed":210003,"total_duration":0.219329825,"snapshot_id":"623eda43"}
"""

# stdout and stderr together (2>&1) of a backup that could not read one file, exit code 3
RESTIC_014_PARTIAL = """\
{"message_type":"status","percent_done":0,"total_files":1,"total_bytes":1000}
{"message_type":"error","error":{"Op":"open","Path":"src/a/f3","Err":13},"during":"archival","item":"/tmp/tt/src/a/f3"}
{"message_type":"summary","files_new":0,"files_changed":20,"files_unmodified":0,"dirs_new":0,"dirs_changed":2,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":3,"data_added":7578,"total_files_processed":20,"total_bytes_processed":207011,"total_duration":0.215972669,"snapshot_id":"b4cd37c9"}
Warning: at least one source file could not be read
"""

RESTIC_017 = """\
{"message_type":"status","seconds_elapsed":1,"percent_done":0.5,"total_files":40,"files_done":20,"total_bytes":4000000,"bytes_done":2000000,"current_files":["/srv/photos/b.jpg"]}
{"message_type":"verbose_status","action":"new","item":"/srv/photos/a.jpg","duration":0.01,"data_size":100000,"data_size_in_repo":90000,"metadata_size":0,"metadata_size_in_repo":0,"total_files":0}
{"message_type":"error","error":{"message":"open /srv/photos/secret.jpg: permission denied"},"during":"archival","item":"/srv/photos/secret.jpg"}
{"message_type":"summary","dry_run":false,"files_new":37,"files_changed":2,"files_unmodified":1,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":39,"tree_blobs":2,"data_added":3900000,"data_added_packed":3000000,"total_files_processed":40,"total_bytes_processed":4000000,"backup_start":"2026-08-04T17:21:58.500000+02:00","backup_end":"2026-08-04T17:22:01+02:00","total_duration":2.5,"snapshot_id":"ac05c63e23d4ea9c4d8ec49e59ddba33b82015d86b99e9ba928f32e87aeccf95","files_skipped_future":7}
{"message_type":"exit_error","code":3,"message":"Warning: at least one source file could not be read"}
"""  # noqa: E501

BORG_12 = """\
{
    "archive": {
        "command_line": ["/usr/bin/borg", "create", "--json", "::a1", "src"],
        "duration": 0.007998,
        "end": "2026-11-22T00:24:39.000000",
        "id": "5dbc0230b3f6280936ecd00c66a6f98ec28961a7cf0af264b29eaf466ef4d234",
        "limits": {"max_archive_size": 2.1648449305840566e-05},
        "name": "a1",
        "start": "2026-11-22T00:24:39.000000",
        "stats": {
            "compressed_size": 210528,
            "deduplicated_size": 105264,
            "nfiles": 21,
            "original_size": 421056
        }
    },
    "cache": {
        "path": "/root/.cache/borg/99e9d8c99d82a9038b9ef80012bbc8b8d6842c626141aa8c4c51c976f8729373",
        "stats": {"total_chunks": 23, "total_csize": 210074, "total_size": 210011,
                  "total_unique_chunks": 23, "unique_csize": 211939, "unique_size": 213996}
    },
    "encryption": {"mode": "none"},
    "repository": {
        "id": "99e9d8c99d82a9038b9ef80012bbc8b8d6842c626141aa8c4c51c976f8729373",
        "last_modified": "2026-11-22T00:24:39.000000",
        "location": "/tmp/tt/borg"
    }
}
"""  # noqa: E501

RSYNC_STATS = """\

Number of files: 1,234 (reg: 1,000, dir: 233, link: 1)
Number of created files: 22 (reg: 21, dir: 1)
Number of deleted files: 0
Number of regular files transferred: 24
Total file size: 210,011 bytes
Total transferred file size: 12,345 bytes
Literal data: 2,048 bytes
Matched data: 10,297 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 211,305
Total bytes received: 430

sent 211,305 bytes  received 430 bytes  423,470.00 bytes/sec
total size is 210,011  speedup is 0.99
"""

RSYNC_MISSING_SOURCE = """\
rsync: [sender] change_dir "/tmp/tt/missing" failed: No such file or directory (2)

Number of files: 0
Number of created files: 0
Number of deleted files: 0
Number of regular files transferred: 0
Total file size: 0 bytes
Total transferred file size: 0 bytes
Literal data: 0 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 19
Total bytes received: 12

sent 19 bytes  received 12 bytes  62.00 bytes/sec
total size is 0  speedup is 0.00
rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]
"""  # noqa: E501


def bad(tool: str, text: str, **kw) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_tool_output(tool, text, job="photos", now=NOW, **kw)
    return info.value.message


# --- the registry ----------------------------------------------------------------------


def test_the_tools_are_registered_and_a_second_registration_is_refused() -> None:
    assert sorted(tool_names()) == ["borg", "builtin", "restic", "rsync"]
    with pytest.raises(ValueError, match="registered twice"):
        register_tool("restic", restic.parse)


def test_unknown_tool_and_bad_job_are_named() -> None:
    with pytest.raises(InvalidInput, match="unknown tool 'tar'"):
        parse_tool_output("tar", "", job="photos")
    with pytest.raises(InvalidInput) as info:
        parse_tool_output("restic", RESTIC_014, job="Not A Slug")
    assert info.value.details[0]["field"] == "job"


# --- restic ----------------------------------------------------------------------------


def test_restic_014_summary_maps_to_the_run_fields() -> None:
    report = restic.parse(RESTIC_014, job="photos", now=NOW)
    assert report.status is RunStatus.SUCCESS
    assert (report.files, report.files_new, report.files_changed) == (21, 21, 0)
    assert report.size_bytes == 210003
    assert report.bytes_added == 217900
    assert report.duration_s == pytest.approx(0.219329825)
    # 0.14 prints no times: the run ends at `now` and began total_duration earlier
    assert report.finished_at == NOW
    assert report.started_at == pytest.approx(NOW - 0.219329825)
    assert report.tool == "restic"
    assert report.backup_id == "restic-623eda43"
    assert report.stats is not None
    assert report.stats["dirs_new"] == 2 and report.stats["tree_blobs"] == 3
    assert "message_type" not in report.stats
    assert report.message is not None and "623eda43" in report.message
    assert report.log is None  # progress lines are not a log


def test_restic_014_exit_3_with_an_error_line_is_a_warning_naming_the_file() -> None:
    report = restic.parse(RESTIC_014_PARTIAL, job="photos", exit_code=3, now=NOW)
    assert report.status is RunStatus.WARNING
    assert report.exit_code == 3
    assert report.files == 20 and report.files_changed == 20
    assert report.message is not None
    assert "/tmp/tt/src/a/f3" in report.message and "permission denied" in report.message
    assert report.log is not None and "at least one source file" in report.log
    assert report.stats is not None and report.stats["errors"] == 1


def test_restic_error_line_alone_makes_a_warning_without_an_exit_code() -> None:
    report = restic.parse(RESTIC_014_PARTIAL, job="photos", now=NOW)
    assert report.status is RunStatus.WARNING
    assert report.exit_code is None


def test_restic_017_shape_uses_its_times_and_keeps_new_fields() -> None:
    report = restic.parse(RESTIC_017, job="photos", now=NOW)
    assert report.status is RunStatus.WARNING
    assert report.exit_code == 3  # from the exit_error line
    assert (report.files, report.files_new, report.files_changed) == (40, 37, 2)
    assert report.size_bytes == 4_000_000
    assert report.bytes_added == 3_900_000
    assert report.started_at == datetime.fromisoformat("2026-08-04T17:21:58.5+02:00").timestamp()
    assert report.finished_at == datetime.fromisoformat("2026-08-04T17:22:01+02:00").timestamp()
    assert report.duration_s == 2.5
    stats = report.stats
    assert stats is not None
    assert stats["data_added_packed"] == 3_000_000
    assert stats["compression_ratio"] == 1.3
    assert stats["files_skipped_future"] == 7  # unknown fields are kept
    assert stats["dry_run"] is False
    assert report.message is not None and "/srv/photos/secret.jpg" in report.message
    assert (
        report.backup_id
        == "restic-ac05c63e23d4ea9c4d8ec49e59ddba33b82015d86b99e9ba928f32e87aeccf95"
    )


def test_restic_caller_times_win_over_the_tools_own() -> None:
    report = restic.parse(RESTIC_017, job="photos", started_at=NOW - 60, finished_at=NOW)
    assert (report.started_at, report.finished_at) == (NOW - 60, NOW)
    assert report.duration_s == 2.5  # restic's own figure for the backup itself


def test_restic_missing_optional_fields_are_tolerated() -> None:
    text = '{"message_type":"summary","snapshot_id":"abcd1234"}\n'
    report = restic.parse(text, job="photos", now=NOW)
    assert report.status is RunStatus.SUCCESS
    assert report.files is None and report.bytes_added is None and report.duration_s is None
    assert report.started_at == report.finished_at == NOW


@pytest.mark.parametrize("code", [1, 10, 12])
def test_restic_other_exit_codes_fail(code: int) -> None:
    assert restic.parse(RESTIC_014, job="photos", exit_code=code).status is RunStatus.FAILED


def test_restic_interrupted_is_cancelled_never_success() -> None:
    report = restic.parse(RESTIC_014, job="photos", exit_code=130)
    assert report.status is RunStatus.CANCELLED


def test_restic_failure_without_summary_is_a_failed_run_with_restics_message() -> None:
    text = (
        '{"message_type":"exit_error","code":12,'
        '"message":"Fatal: wrong password or no key found"}\n'
    )
    report = restic.parse(text, job="photos", now=NOW)
    assert report.status is RunStatus.FAILED
    assert report.exit_code == 12
    assert report.message is not None and "wrong password or no key found" in report.message
    assert report.files is None


def test_restic_014_text_failure_with_exit_code_is_a_failed_run() -> None:
    text = "Fatal: unable to open config file: stat /repo/config: no such file or directory\n"
    report = restic.parse(text, job="photos", exit_code=1, now=NOW)
    assert report.status is RunStatus.FAILED
    assert report.message is not None and "unable to open config file" in report.message
    failed_empty = restic.parse("", job="photos", exit_code=1, now=NOW)
    assert failed_empty.message == "restic exited with code 1: fatal error, no snapshot was made"


def test_restic_same_failure_output_at_the_same_time_has_the_same_id() -> None:
    one = restic.parse("Fatal: boom\n", job="photos", exit_code=1, now=NOW)
    two = restic.parse("Fatal: boom\n", job="photos", exit_code=1, now=NOW)
    later = restic.parse("Fatal: boom\n", job="photos", exit_code=1, now=NOW + 86400)
    assert one.backup_id == two.backup_id != later.backup_id


def test_restic_bad_input_is_named() -> None:
    assert bad("restic", "").startswith("empty input; expected `restic backup --json` output")
    assert "'Backup done' is not restic's output" in bad("restic", "Backup done\n")
    # restic's own words without a saved snapshot are recorded, as unknown: never refused
    cut = restic.parse("Files:  21 new\nAdded: 1 MiB\n", job="photos", now=NOW)
    assert cut.status is RunStatus.UNKNOWN and "no saved snapshot" in (cut.message or "")
    message = bad("restic", RESTIC_014.replace('"tree_blobs":3,', '"tree_blobs":3,,'))
    assert message.startswith("line 3: malformed JSON")
    assert "line 2: JSON object cut short" in bad("restic", '{"message_type":"status"}\n{"a":')
    status_only = RESTIC_014.splitlines()[0] + "\n"
    assert restic.parse(status_only, job="photos").status is RunStatus.UNKNOWN
    assert restic.parse(status_only, job="photos", exit_code=0).status is RunStatus.UNKNOWN
    assert restic.parse(status_only, job="photos", exit_code=3).status is RunStatus.WARNING
    assert "lines 3, 6: more than one summary" in bad("restic", RESTIC_014 * 2)
    assert "without message_type" in bad("restic", BORG_12)
    wrong_type = '{"message_type":"status"}\n{"message_type":"summary","total_files_processed":"9"}'
    assert (
        bad("restic", wrong_type) == "line 2: total_files_processed must be a non-negative number"
    )


# --- borg ------------------------------------------------------------------------------


def test_borg_12_json_maps_to_the_run_fields() -> None:
    report = borg.parse(BORG_12, job="photos", now=NOW)
    assert report.status is RunStatus.SUCCESS
    assert report.files == 21
    assert report.size_bytes == 421056
    assert report.bytes_added == 105264
    assert report.duration_s == pytest.approx(0.007998)
    # borg 1.x prints local time without a zone
    assert report.started_at == datetime.fromisoformat("2026-11-22T00:24:39").timestamp()
    assert report.files_new is None and report.files_changed is None  # not without --list
    stats = report.stats
    assert stats is not None
    assert stats["compressed_size"] == 210528 and stats["deduplicated_size"] == 105264
    assert stats["compression_ratio"] == 2.0 and stats["dedup_ratio"] == 2.0
    assert stats["archive"]["name"] == "a1" and stats["archive"]["limits"]
    assert stats["repository"]["location"] == "/tmp/tt/borg"
    assert stats["cache"]["stats"]["total_chunks"] == 23
    assert stats["encryption"] == {"mode": "none"}
    assert (
        report.backup_id == "borg-5dbc0230b3f6280936ecd00c66a6f98ec28961a7cf0af264b29eaf466ef4d234"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, RunStatus.SUCCESS), (1, RunStatus.WARNING), (107, RunStatus.WARNING),
     (2, RunStatus.FAILED), (75, RunStatus.FAILED), (143, RunStatus.CANCELLED)],
)  # fmt: skip
def test_borg_exit_codes(code: int, status: RunStatus) -> None:
    assert borg.parse(BORG_12, job="photos", exit_code=code).status is status


def test_borg_list_lines_and_show_rc_give_new_changed_files_and_the_exit_code() -> None:
    stderr = (
        "A src/new.txt\nM src/a/f1\nM src/a/f2\nU src/a/f4\nd src/a\n"
        "/nonexistent: [Errno 2] No such file or directory: 'nonexistent'\n"
    )
    rc = "terminating with warning status, rc 1\n"
    report = borg.parse(stderr + BORG_12 + rc, job="photos", now=NOW)
    assert (report.files_new, report.files_changed) == (1, 2)
    assert report.status is RunStatus.WARNING and report.exit_code == 1
    assert report.message is not None and "/nonexistent" in report.message
    assert report.log is not None and "A src/new.txt" in report.log


def test_borg_log_json_file_status_is_counted() -> None:
    stderr = (
        '{"type": "file_status", "status": "A", "path": "src/n1"}\n'
        '{"type": "file_status", "status": "A", "path": "src/n2"}\n'
        '{"type": "file_status", "status": "M", "path": "src/m"}\n'
        '{"type": "log_message", "time": 1.0, "levelname": "WARNING", "name": "borg.archive",'
        ' "message": "src/x: file changed while we backed it up"}\n'
    )
    report = borg.parse(stderr + BORG_12, job="photos", now=NOW)
    assert (report.files_new, report.files_changed) == (2, 1)
    assert report.status is RunStatus.WARNING  # a warning logged, no exit code given
    assert report.message is not None and "file changed while we backed it up" in report.message


def test_borg_missing_optional_fields_and_unknown_ones() -> None:
    text = '{"archive": {"name": "n", "stats": {"nfiles": 3, "nfiles_new": 1}}, "future": 1}'
    report = borg.parse(text, job="photos", now=NOW)
    assert report.files == 3 and report.size_bytes is None and report.bytes_added is None
    assert report.stats is not None
    assert report.stats["nfiles_new"] == 1 and report.stats["future"] == 1
    assert report.finished_at == NOW
    assert report.backup_id is not None and report.backup_id.startswith("borg-")


def test_borg_error_without_json_is_a_failed_run() -> None:
    report = borg.parse("Archive a1 already exists\n", job="photos", exit_code=2, now=NOW)
    assert report.status is RunStatus.FAILED
    assert report.message is not None and "Archive a1 already exists" in report.message


def test_borg_bad_input_is_named() -> None:
    assert bad("borg", "  \n").startswith("empty input; expected `borg create --json` output")
    assert "is not borg's output" in bad("borg", "Archive name: a1\n")
    # borg's own log without an archive, or a warning code without one: recorded as unknown
    logged = borg.parse('{"type": "log_message", "message": "x"}\n', job="photos")
    assert logged.status is RunStatus.UNKNOWN and "no archive" in (logged.message or "")
    coded = borg.parse("Archive a1 already exists\n", job="photos", exit_code=1)
    assert coded.status is RunStatus.UNKNOWN
    assert bad("borg", BORG_12[:200]).startswith("line 1: JSON object cut short")
    assert "more than one archive" in bad("borg", BORG_12 + BORG_12)
    negative = bad("borg", '{"archive": {"stats": {"nfiles": -1}}}')
    assert negative == "line 1: archive.stats.nfiles must be a non-negative number"
    assert "archive.start" in bad("borg", '{"archive": {"start": "yesterday"}}')


# --- rsync -----------------------------------------------------------------------------


def test_rsync_stats_map_to_the_run_fields() -> None:
    report = rsync.parse(RSYNC_STATS, job="mirror", started_at=NOW - 30, finished_at=NOW)
    assert report.status is RunStatus.SUCCESS
    assert report.files == 1000  # regular files
    assert report.files_new == 21
    assert report.files_changed == 3  # 24 regular files transferred, 21 of them created
    assert report.size_bytes == 210011
    assert report.bytes_added == 2048  # literal data
    assert report.duration_s == 30
    stats = report.stats
    assert stats is not None
    assert stats["number_of_files"] == 1234
    assert stats["number_of_files_by_type"] == {"reg": 1000, "dir": 233, "link": 1}
    assert stats["total_transferred_file_size"] == 12345
    assert stats["matched_data"] == 10297
    assert stats["file_list_generation_time"] == 0.001
    assert stats["sent_bytes"] == 211305 and stats["received_bytes"] == 430
    assert stats["bytes_per_sec"] == 423470.0 and stats["speedup"] == 0.99
    assert "rounded" not in stats


def test_rsync_without_times_has_no_duration() -> None:
    report = rsync.parse(RSYNC_STATS, job="mirror", now=NOW)
    assert report.duration_s is None and report.started_at == report.finished_at == NOW


def test_rsync_unknown_figures_are_kept() -> None:
    text = RSYNC_STATS.replace("Matched data", "Number of deleted files: 0\nMatched data")
    assert "twice" in bad("rsync", text)
    extra = RSYNC_STATS.replace("File list size: 0", "File list size: 0\nFuture counter: 1,234")
    report = rsync.parse(extra, job="mirror", now=NOW)
    assert report.stats is not None and report.stats["future_counter"] == 1234


def test_rsync_human_readable_numbers_are_read_and_marked_rounded() -> None:
    text = (
        "Number of files: 24 (reg: 22, dir: 2)\nTotal file size: 210.02K bytes\n"
        "Literal data: 1.50M bytes\n\nsent 211.38K bytes  received 449 bytes  423.65K bytes/sec\n"
        "total size is 210.02K  speedup is 0.99\n"
    )
    report = rsync.parse(text, job="mirror", now=NOW)
    assert report.size_bytes == 210020 and report.bytes_added == 1_500_000
    assert report.stats is not None and report.stats["rounded"] is True


def test_rsync_trailer_alone_is_enough() -> None:
    report = rsync.parse("sent 10 bytes  received 20 bytes  60.00 bytes/sec\n"
                         "total size is 1,000  speedup is 33.33 (DRY RUN)\n",
                         job="mirror", now=NOW)  # fmt: skip
    # a dry run copied nothing: not a backup, whatever it would have sent
    assert report.status is RunStatus.UNKNOWN and report.size_bytes is None
    assert report.stats is not None and report.stats["dry_run"] is True


def test_rsync_missing_source_fails_with_rsyncs_message_and_code() -> None:
    report = rsync.parse(RSYNC_MISSING_SOURCE, job="mirror", now=NOW)
    assert report.status is RunStatus.FAILED
    assert report.exit_code == 23  # from "rsync error: … (code 23)"
    assert report.message is not None and "rsync: [sender] change_dir" in report.message
    assert report.files == 0
    given = rsync.parse(RSYNC_STATS, job="mirror", exit_code=23, now=NOW)
    assert given.status is RunStatus.FAILED
    assert given.message == "rsync exited with code 23: partial transfer due to error"


def test_rsync_vanished_files_are_a_warning() -> None:
    assert rsync.parse(RSYNC_STATS, job="m", exit_code=24, now=NOW).status is RunStatus.WARNING


def test_rsync_failure_without_stats() -> None:
    text = "rsync: connection unexpectedly closed (0 bytes received so far) [sender]\n"
    report = rsync.parse(text, job="mirror", exit_code=12, now=NOW)
    assert report.status is RunStatus.FAILED and text.strip() in (report.message or "")


def test_rsync_bad_input_is_named() -> None:
    assert bad("rsync", "") == "empty input; expected `rsync --stats` output"
    message = bad("rsync", "\nall copied\nfile1\n")
    assert "line 2: 'all copied'" in message and "--stats" in message
    # rsync's own words without statistics: recorded as unknown, with the hint
    cut = rsync.parse("sending incremental file list\nfile1\n", job="mirror", now=NOW)
    assert cut.status is RunStatus.UNKNOWN and "--stats" in (cut.message or "")
