"""Outcome details the conformance fixtures do not show on their own (issue 13): borg's
plain messages are not --list lines, ``wrap`` judges a wrapped tool by its contract, an
unknown outcome has its own exit status, and a check run never moves the last backup."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from backwatch.cli.target import resolve
from backwatch.domain.lifecycle import RunStatus, exit_code
from backwatch.ingest.tools import parse_tool_output
from tests.conftest import run_cli

ARCHIVE = json.dumps(
    {"archive": {"name": "a1", "id": "ab12", "duration": 1.0,
                 "stats": {"nfiles": 2, "original_size": 10, "compressed_size": 9,
                           "deduplicated_size": 9}}}
)  # fmt: skip


def test_borg_messages_that_start_with_one_letter_are_not_list_lines() -> None:
    text = "\n".join(
        [
            "A /srv/new.txt",
            "M /srv/changed.txt",
            "A lock was broken by another process.",  # a message, not a file
            "x: unexpected end of archive metadata",
            ARCHIVE,
        ]
    )
    report = parse_tool_output("borg", text, job="home", exit_code=1)
    assert report.files_new == 1 and report.files_changed == 1
    assert report.status is RunStatus.WARNING


def test_restic_014_failures_name_the_fatal_line_not_stdout_noise() -> None:
    text = "open repository\nrepository 1234abcd opened\nFatal: wrong password or no key found\n"
    report = parse_tool_output("restic", text, job="srv")
    assert report.status is RunStatus.FAILED
    assert "wrong password" in (report.message or "") and report.duration_s is None
    assert report.files_new is None


def test_an_unknown_outcome_has_an_exit_status_of_its_own() -> None:
    assert exit_code(RunStatus.UNKNOWN) == 4
    assert len({exit_code(s) for s in RunStatus if s.value != "skipped"}) >= 6


def fake_tool(tmp_path: Path, name: str, output: str, code: int) -> Path:
    script = tmp_path / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stderr.write({output!r})\nsys.exit({code})\n"
    )
    script.chmod(0o755)
    return script


def stored(db: Path, job: str) -> dict:
    tgt = resolve(url=None, token=None, db=str(db), config=None, data_dir=str(db.parent))
    try:
        (run,) = tgt.list_runs(job=job, limit=5)["items"]
        return run  # type: ignore[no-any-return]
    finally:
        tgt.close()


def test_wrap_judges_a_wrapped_restic_by_restics_contract(tmp_path: Path) -> None:
    summary = json.dumps(
        {"message_type": "summary", "files_new": 1, "files_changed": 0,
         "total_files_processed": 1, "total_bytes_processed": 6, "data_added": 700,
         "total_duration": 0.2, "snapshot_id": "724cae2f"}
    )  # fmt: skip
    # restic 0.14 skips a missing source path, says so, and exits 0
    restic = fake_tool(tmp_path, "restic", f"/srv/gone does not exist, skipping\n{summary}\n", 0)
    db = tmp_path / "data" / "bw.sqlite"
    db.parent.mkdir()
    done = run_cli("wrap", "srv", "--db", str(db), "--", str(restic), "backup", "--json")
    assert done.returncode == 0, done.stderr  # wrap keeps the command's own exit code
    run = stored(db, "srv")
    assert run["status"] == "warning" and "does not exist" in run["message"]
    assert run["files_new"] == 1 and run["size_bytes"] == 6


def test_wrap_records_an_rsync_dry_run_as_no_backup(tmp_path: Path) -> None:
    stats = (
        "Number of files: 3 (reg: 3)\nTotal file size: 30 bytes\nLiteral data: 0 bytes\n"
        "sent 10 bytes  received 20 bytes  60.00 bytes/sec\n"
        "total size is 30  speedup is 1.00 (DRY RUN)\n"
    )
    rsync = fake_tool(tmp_path, "rsync", stats, 0)
    db = tmp_path / "data" / "bw.sqlite"
    db.parent.mkdir()
    done = run_cli("wrap", "mirror", "--db", str(db), "--", str(rsync), "-n", "a/", "b/")
    assert done.returncode == 0, done.stderr
    run = stored(db, "mirror")
    assert run["status"] == "unknown" and "dry run" in run["message"]
    assert run["size_bytes"] is None


def test_a_check_run_does_not_move_the_last_backup(tmp_path: Path) -> None:
    db = tmp_path / "data" / "bw.sqlite"
    db.parent.mkdir()
    backup = tmp_path / "backup.json"
    backup.write_text(ARCHIVE)
    assert run_cli("import", "-f", "borg", "-j", "home", "--exit-code", "0", str(backup),
                   "--db", str(db)).returncode == 0  # fmt: skip
    check = tmp_path / "check.txt"
    check.write_text("")
    done = run_cli("import", "-f", "borg", "-j", "home", "--kind", "check", "--exit-code", "0",
                   str(check), "--db", str(db))  # fmt: skip
    assert done.returncode == 0, done.stderr
    tgt = resolve(url=None, token=None, db=str(db), config=None, data_dir=str(db.parent))
    try:
        runs = tgt.list_runs(job="home", limit=5)["items"]
        job = tgt.get_job("home")
    finally:
        tgt.close()
    kinds = sorted(r["kind"] for r in runs)
    assert kinds == ["backup", "check"]
    backup_run = next(r for r in runs if r["kind"] == "backup")
    assert job["last_run"]["id"] == backup_run["id"]


FIXTURES = Path(__file__).parents[1] / "fixtures" / "tools"


def test_raw_tool_output_over_http_follows_the_same_contract(api) -> None:
    wrong = json.loads((FIXTURES / "restic/0.14.0/wrong_password.json").read_text())
    r = api.post(
        "/api/v1/tool-output/restic",
        params={"job": "srv"},  # no exit code: restic's own Fatal: line says it
        content=wrong["output"],
        headers=api.auth_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "failed" and "wrong password" in r.json()["message"]

    corrupt = json.loads((FIXTURES / "borg/1.2.4/check_corrupt.json").read_text())
    r = api.post(
        "/api/v1/tool-output/borg",
        params={"job": "home", "exit_code": corrupt["exit_code"], "id": "check-1"},
        content=corrupt["output"],
        headers=api.auth_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "check" and r.json()["status"] == "failed"
    run = api.get(f"/api/v1/runs/{r.json()['id']}").json()
    assert run["stats"]["verify"] == "failed"

    again = api.post(
        "/api/v1/tool-output/borg",
        params={"job": "home", "exit_code": corrupt["exit_code"], "id": "check-1"},
        content=corrupt["output"],
        headers=api.auth_headers,
    )
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]

    unknown_tool = api.post(
        "/api/v1/tool-output/tar", params={"job": "x"}, content="x", headers=api.auth_headers
    )
    assert unknown_tool.status_code == 422 and "known: " in unknown_tool.text
    not_restic = api.post(
        "/api/v1/tool-output/restic",
        params={"job": "x"},
        content="all good\n",
        headers=api.auth_headers,
    )
    assert not_restic.status_code == 422 and "not restic's output" in not_restic.text
    no_token = api.post("/api/v1/tool-output/restic", params={"job": "x"}, content="x")
    assert no_token.status_code == 401


def test_import_refuses_a_kind_it_does_not_know(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("no errors were found\n")
    db = tmp_path / "data" / "bw.sqlite"
    db.parent.mkdir()
    done = run_cli("import", "-f", "restic", "-j", "srv", "--kind", "restore", str(out),
                   "--db", str(db))  # fmt: skip
    assert done.returncode == 2 and "--kind must be backup or check" in done.stderr
    rsync_check = run_cli("import", "-f", "rsync", "-j", "srv", "--kind", "check", str(out),
                          "--db", str(db))  # fmt: skip
    assert rsync_check.returncode == 1 and "rsync has no check" in rsync_check.stderr
