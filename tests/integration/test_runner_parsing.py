"""The runner's pure pieces: progress lines of each tool, secret masking, exit meanings."""

from __future__ import annotations

from backwatch.domain.lifecycle import RunStatus
from backwatch.runners import progress, restic
from backwatch.runners.process import Masker


def test_progress_lines_of_each_tool() -> None:
    status = (
        '{"message_type":"status","seconds_elapsed":2,"seconds_remaining":6,'
        '"percent_done":0.25,"total_files":40,"files_done":10,"total_bytes":4000,'
        '"bytes_done":1000,"current_files":["/srv/a"]}'
    )
    got = progress.restic(status)
    assert got is not None and got.fraction == 0.25 and got.done_bytes == 1000
    assert got.total_bytes == 4000 and got.eta_s == 6 and got.current == "/srv/a"
    assert progress.restic('{"message_type":"summary","files_new":1}') is None

    borg = progress.borg(
        '{"original_size": 5000, "nfiles": 7, "path": "x", "time": 1.0, '
        '"type": "archive_progress", "finished": false}'
    )
    assert borg is not None and borg.done_bytes == 5000 and borg.files == 7
    assert progress.borg('{"type": "log_message", "levelname": "WARNING"}') is None

    rsync = progress.rsync("     12,345,678  45%   11.50MB/s    0:00:03 (xfr#12, to-chk=88/101)")
    assert rsync is not None and rsync.fraction == 0.45 and rsync.done_bytes == 12_345_678
    assert rsync.rate == 11.5e6 and rsync.eta_s == 3
    assert progress.rsync("Number of files: 24 (reg: 22, dir: 2)") is None


def test_secrets_are_masked() -> None:
    mask = Masker.for_env({"RESTIC_PASSWORD": "hunter22", "PATH": "/usr/bin"})
    line = "pg_dump postgresql://app:s3cret@db/app --x password=abc123 hunter22 /usr/bin"
    assert mask(line) == "pg_dump postgresql://app:***@db/app --x password=*** *** /usr/bin"


def test_restic_exit_codes_have_clear_meanings() -> None:
    assert restic.explain(3, "").status is RunStatus.WARNING
    for code, words in ((10, "does not exist"), (11, "locked"), (12, "wrong password")):
        outcome = restic.explain(code, "")
        assert outcome.status is RunStatus.FAILED and words in outcome.message
    old = restic.explain(1, "Fatal: wrong password or no key found")
    assert "wrong password" in old.message and "password_file" in old.message
