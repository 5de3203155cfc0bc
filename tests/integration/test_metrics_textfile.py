"""``backwatch metrics --textfile PATH``: the metrics for node_exporter's textfile collector,
from the database or a server, written atomically, and accepted by ``promtool check metrics``
(Debian's prometheus package; the same parser node_exporter uses)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, need_tool, run_cli

RUN = {"job": "photos", "host": "nas", "status": "success", "duration_s": 42,
       "size_bytes": 123456789, "phases": {"dump": 2, "upload": 40}}  # fmt: skip


def _promtool_accepts(path: Path) -> None:
    promtool = need_tool("promtool")
    check = subprocess.run(
        [promtool, "check", "metrics"], stdin=path.open("rb"), capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _values(path: Path) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
        if s.labels.get("job") == "photos" and "phase" not in s.labels and "health" not in s.labels
        and s.labels.get("status", "success") == "success"
    }  # fmt: skip


def test_textfile_from_the_database(tmp_path: Path) -> None:
    db = tmp_path / "backwatch.db"
    body = json.dumps({**RUN, "started_at": time.time() - 60})
    pushed = run_cli("push", "--db", str(db), "--json", "-", input=body)
    assert pushed.returncode == 0, pushed.stderr
    out_dir = tmp_path / "textfile_collector"
    out_dir.mkdir()
    target = out_dir / "backwatch.prom"
    target.write_text("stale\n")  # replaced whole

    made = run_cli("metrics", "--db", str(db), "--textfile", str(target))
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""
    assert [p.name for p in out_dir.iterdir()] == ["backwatch.prom"]  # no temp file left
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter runs as its own user
    _promtool_accepts(target)
    values = _values(target)
    assert values["backwatch_job_last_size_bytes"] == 123456789
    assert values["backwatch_job_last_duration_seconds"] == 42
    assert values["backwatch_job_runs_total"] == 1
    assert "# EOF" not in target.read_text()  # the text format, not OpenMetrics

    printed = run_cli("metrics", "--db", str(db))
    assert printed.returncode == 0, printed.stderr
    assert "backwatch_job_last_size_bytes" in printed.stdout


def test_textfile_from_a_server(server: Server, tmp_path: Path) -> None:
    run_cli(
        "push", "--url", server.url, "--token", server.token, "--json", "-",
        input=json.dumps({**RUN, "started_at": time.time() - 60}),
    )  # fmt: skip
    target = tmp_path / "backwatch.prom"
    made = run_cli("metrics", "--url", server.url, "--textfile", str(target))
    assert made.returncode == 0, made.stderr
    _promtool_accepts(target)
    assert _values(target)["backwatch_job_last_size_bytes"] == 123456789


def test_promtool_is_a_real_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken.prom"
    broken.write_text('backwatch_job_last_size_bytes{job="photos" 1\n')
    promtool = need_tool("promtool")
    check = subprocess.run([promtool, "check", "metrics"], stdin=broken.open("rb"), timeout=30)
    assert check.returncode != 0


def test_clear_errors(tmp_path: Path) -> None:
    missing_dir = run_cli(
        "metrics", "--db", str(tmp_path / "none.db"), "--textfile", str(tmp_path / "x.prom")
    )
    assert missing_dir.returncode == 1
    assert "no database at" in missing_dir.stderr
    assert "Traceback" not in missing_dir.stderr

    db = tmp_path / "backwatch.db"
    run_cli("push", "--db", str(db), "--json", "-", input=json.dumps({**RUN, "started_at": 1e9}))
    no_folder = run_cli("metrics", "--db", str(db), "--textfile", str(tmp_path / "no" / "x.prom"))
    assert no_folder.returncode == 1
    assert "cannot write" in no_folder.stderr
    not_prom = run_cli("metrics", "--db", str(db), "--textfile", str(tmp_path / "m.txt"))
    assert not_prom.returncode == 0
    assert "*.prom" in not_prom.stderr

    unreachable = run_cli("metrics", "--url", "http://127.0.0.1:9", "--textfile", "x.prom")
    assert unreachable.returncode == 1
    assert "cannot reach the server" in unreachable.stderr
