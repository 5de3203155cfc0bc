"""The bash library ``backwatch.sh`` (seed 000 API): real bash, real curl, a real server.

Helpers here (``run_bash``, ``ServerApi``) are shared with test_spool.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backwatch.cli.shell import library_path
from backwatch.timeutil import parse_time
from tests.conftest import free_port, need, need_tool, run_cli

LIB = library_path()
SEED_FIELDS = {
    "service", "description", "backup_path", "status", "start_time", "end_time",
    "duration_seconds", "files_processed", "total_size_bytes", "message", "hostname",
}  # fmt: skip
ELLIPSIS = "\u2026"


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_tool("bash")
    need_tool("curl")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything backwatch reads, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BACKWATCH_") and k not in ("METRICS_DIR", "XDG_CACHE_HOME")
    }
    env.update(extra)
    return env


def run_bash(
    script: str | bytes,
    env: dict[str, str],
    *args: str | bytes,
    as_nobody: bool = False,
    strict: bool = True,
    bash: str = "bash",
) -> subprocess.CompletedProcess[bytes]:
    """Run ``script`` in a real bash that sourced the library (under ``set -euo pipefail``
    unless ``strict`` is false); ``args`` become "$1"…"""
    head = ("set -euo pipefail\n" if strict else "") + f"source {shlex.quote(str(LIB))}\n"
    body = script.encode() if isinstance(script, str) else script
    cmd: list[str | bytes] = [bash, "-c", head.encode() + body, "script", *args]
    if as_nobody:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=180)


class ServerApi:
    """Reads runs back from a real server."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def get(self, path: str) -> Any:
        req = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def runs(self, job: str) -> list[dict[str, Any]]:
        """Every run of ``job``, oldest first."""
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = self.get(f"/api/v1/runs?job={job}&limit=200{cursor}")
            items.extend(page["items"])
            if not page.get("next_cursor"):
                break
            cursor = f"&cursor={page['next_cursor']}"
        # by time, not by text ("…:36Z" is a whole second and sorts after "…:36.120Z");
        # runs that start in the same millisecond: ids made in one process count up
        return sorted(items, key=lambda r: (parse_time(r["started_at"]), r["id"]))

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/runs/{run_id}")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"metrics": tmp_path / "metrics", "spool": tmp_path / "spool"}


def lib_env(dirs: dict[str, Path], server: Any = None, url: str | None = None, **extra: str):
    env = clean_env(METRICS_DIR=str(dirs["metrics"]), BACKWATCH_SPOOL_DIR=str(dirs["spool"]))
    if server is not None:
        env.update(BACKWATCH_URL=server.url, BACKWATCH_TOKEN=server.token)
    if url is not None:
        env["BACKWATCH_URL"] = url
    env.update(extra)
    return env


def status_file(dirs: dict[str, Path], service: str) -> dict[str, Any]:
    return json.loads((dirs["metrics"] / f"{service}_status.json").read_bytes())  # type: ignore[no-any-return]


def spooled(dirs: dict[str, Path]) -> list[Path]:
    spool = dirs["spool"]
    return sorted(spool.glob("*.json")) if spool.is_dir() else []


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


SEED000 = """
metrics_backup_start "plex" "Plex Media Server backup" "/mnt/share/media/backups/plex"
metrics_update_status "running" "Current operation"
metrics_file_backup_complete "/mnt/share/media/backups/plex/db.tar" "1048576" "success"
metrics_file_backup_complete "/mnt/share/media/backups/plex/media.tar" "2097152" "success"
metrics_file_backup_complete "/mnt/share/media/backups/plex/prefs.xml" "4096" "success"
metrics_backup_complete "success" "Backup completed successfully"
echo END
"""


def test_shell_lib_command_prints_the_library_and_its_path():
    text = run_cli("shell-lib")
    assert text.returncode == 0, text.stderr
    assert text.stdout == LIB.read_text()
    assert "metrics_backup_start()" in text.stdout
    where = run_cli("shell-lib", "--path")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == LIB
    assert Path(where.stdout.strip()).is_file()


def test_seed000_sequence_writes_the_status_file_and_reports_the_run(server, dirs):
    proc = run_bash(SEED000, lib_env(dirs, server))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == b"END"
    assert proc.stderr == b""

    status = status_file(dirs, "plex")
    assert status.keys() >= SEED_FIELDS
    assert status["service"] == "plex"
    assert status["description"] == "Plex Media Server backup"
    assert status["backup_path"] == "/mnt/share/media/backups/plex"
    assert status["status"] == "success"
    assert status["files_processed"] == 3
    assert status["total_size_bytes"] == 1048576 + 2097152 + 4096
    assert status["message"] == "Backup completed successfully"
    assert status["hostname"]
    start = datetime.fromisoformat(status["start_time"])
    end = datetime.fromisoformat(status["end_time"])
    assert start.tzinfo is not None and start <= end
    assert status["duration_seconds"] == int(end.timestamp()) - int(start.timestamp())
    assert not list(dirs["metrics"].glob(".*")), "temporary files left behind"

    api = ServerApi(server.url, server.token)
    [run] = api.runs("plex")
    assert run["id"] == status["run_id"]
    assert run["status"] == "success"
    assert run["files"] == 3
    assert run["size_bytes"] == status["total_size_bytes"]
    assert run["message"] == "Backup completed successfully"
    assert run["host"] == status["hostname"]
    assert abs(epoch(run["started_at"]) - start.timestamp()) < 1
    detail = api.run(run["id"])
    assert [f["path"] for f in detail["file_records"]] == [
        "/mnt/share/media/backups/plex/db.tar",
        "/mnt/share/media/backups/plex/media.tar",
        "/mnt/share/media/backups/plex/prefs.xml",
    ]
    assert spooled(dirs) == []


def test_legacy_names_behave_like_the_new_ones(server, dirs):
    script = """
metrics_init "immich" "Immich photos" "/srv/immich"
metrics_status_update "running" "dumping postgres"
metrics_add_file "/srv/immich/db.sql.gz" "5000" "success"
metrics_add_file "/srv/immich/upload.tar" "7000" "failed"
metrics_complete_backup "failed" "upload.tar could not be read"
metrics_get_status immich
"""
    proc = run_bash(script, lib_env(dirs, server))
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == status_file(dirs, "immich")
    assert printed["status"] == "failed"
    assert printed["files_processed"] == 2
    assert printed["total_size_bytes"] == 12000
    [run] = ServerApi(server.url, server.token).runs("immich")
    assert (run["status"], run["files"], run["size_bytes"]) == ("failed", 2, 12000)
    assert run["message"] == "upload.tar could not be read"


def test_files_counted_in_a_pipeline_subshell_and_services_listed(server, dirs):
    script = """
metrics_backup_start "Media Services" "all media" "/srv/media"
printf '%s\\n' a b c d | while read -r f; do
  metrics_file_backup_complete "/srv/media/$f" 10 success
done
metrics_update_status running "after the loop"
metrics_backup_complete success "done"
metrics_backup_start docker "containers" /srv/docker
metrics_list_services
"""
    proc = run_bash(script, lib_env(dirs, server))
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.decode().split("\n")[:-1]) == ["Media Services", "docker"]
    status = status_file(dirs, "Media Services")
    assert (status["files_processed"], status["total_size_bytes"]) == (4, 40)
    # The job id is the service name as a slug.
    [run] = ServerApi(server.url, server.token).runs("media-services")
    assert (run["files"], run["size_bytes"], run["status"]) == (4, 40, "success")


@pytest.mark.parametrize(
    ("given_status", "final"),
    [
        ("success", "success"),
        ("Completed", "success"),
        ("partial", "warning"),
        ("error", "failed"),
        ("2", "failed"),
        ("cancelled", "cancelled"),
        ("something odd", "warning"),
    ],
)
def test_final_status_words_map_to_run_statuses(dirs, given_status, final):
    script = f'metrics_backup_start svc d p\nmetrics_backup_complete "{given_status}" m\n'
    proc = run_bash(script, lib_env(dirs))
    assert proc.returncode == 0, proc.stderr
    assert status_file(dirs, "svc")["status"] == final
    assert (b"unknown final status" in proc.stderr) == (given_status == "something odd")


# ------------------------------------------------------------------------------- escaping

no_nul = st.binary(max_size=400).filter(lambda b: b"\0" not in b)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    max_size=200,
).map(lambda s: s.encode())
nasty = st.one_of(no_nul, texts, st.sampled_from([b'"', b"\\", b'\\"', b"$(id)", b"\x7f"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=nasty)
def test_any_bytes_become_valid_json_in_the_status_file_and_the_spool(value):
    """Description, path, message and file name: quotes, backslashes, control characters,
    $(…), invalid UTF-8 — the status file and every spool entry parse, and hold the text
    as Python's decode("utf-8", "replace") reads it."""
    expected = value.decode("utf-8", "replace")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"metrics": Path(tmp) / "m", "spool": Path(tmp) / "s"}
        env = lib_env(dirs, url=dead_url(), BACKWATCH_QUIET="1")
        script = """
metrics_backup_start svc "$1" "$1"
metrics_update_status running "$1"
cp "$METRICS_DIR/svc_status.json" "$METRICS_DIR/running.json"
metrics_file_backup_complete "x$1" 7 success
metrics_backup_complete success "$1"
"""
        proc = run_bash(script, env, value)
        assert proc.returncode == 0, proc.stderr
        running = json.loads((dirs["metrics"] / "running.json").read_bytes())
        assert running["message"] == expected
        final = status_file(dirs, "svc")
        assert final["description"] == final["backup_path"] == final["message"] == expected
        bodies = [json.loads(p.read_bytes()) for p in spooled(dirs)]
        assert [b["path"].rsplit("/", 1)[-1] for b in bodies] == [
            "start", "status", "files", "finish"
        ]  # fmt: skip
        assert bodies[1]["body"]["message"] == expected
        assert bodies[2]["body"]["path"] == "x" + expected
        assert bodies[3]["body"]["message"] == expected


NASTY_NAMES = [
    b'/srv/"quoted" name.txt',
    b"/srv/back\\slash\\",
    b"/srv/new\nline\ttab\rcr\x01\x02\x1b[31mred\x1f",
    b"/srv/$(touch /tmp/pwned) `id` ${HOME}",
    b"/srv/caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    b"/srv/latin1 M\xfcnchen \xff\xfe half \xe2\x82",
    b"/srv/%s %d %b \\x41 \\u0041",
]


def test_nasty_and_huge_names_reach_the_server_intact(server, dirs, tmp_path):
    huge = b"/srv/" + b"d" * 50_000 + b"/\xc3\xa9" * 25_000 + b"/end.bin"  # 125 KB
    big_message = b"m" * 100_000 + b" the end"
    names = [*NASTY_NAMES, huge]
    script = """
metrics_backup_start nasty "weird names" /srv
for f in "${@:2}"; do metrics_file_backup_complete "$f" 1 success; done
metrics_backup_complete success "$1"
"""
    proc = run_bash(script, lib_env(dirs, server), big_message, *names)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert not (tmp_path / "pwned").exists()
    api = ServerApi(server.url, server.token)
    [run] = api.runs("nasty")
    assert run["files"] == len(names)
    detail = api.run(run["id"])
    stored = [f["path"] for f in detail["file_records"]]
    expected = [n.decode("utf-8", "replace") for n in NASTY_NAMES]
    assert stored[: len(NASTY_NAMES)] == expected
    # Very long texts keep their end (the file name, the last words), marked with "…".
    assert stored[-1].startswith(ELLIPSIS) and stored[-1].endswith("/\u00e9/end.bin")
    assert len(stored[-1]) <= 4096
    assert run["message"].endswith(" the end")
    assert status_file(dirs, "nasty")["message"].endswith(" the end")
    assert not (dirs["spool"] / "rejected").exists()


# ------------------------------------------------------------------ never breaks the caller

STRICT_CALLER = r"""
set -E -C
shopt -s failglob nocasematch
trap 'echo "ERR trap fired at line $LINENO" >&2; exit 99' ERR
metrics_update_status running "before any start"
metrics_file_backup_complete
metrics_backup_complete
metrics_backup_start
metrics_backup_start "svc" "desc" "/srv"
metrics_update_status
metrics_file_backup_complete "/srv/a" "not-a-number" "success"
metrics_file_backup_complete "/srv/b" "-5"
metrics_file_backup_complete "/srv/c" "99999999999999999999999"
metrics_file_backup_complete "/srv/d" " 0012 "
metrics_file_backup_complete ""
metrics_get_status
metrics_get_status "no-such-service" >/dev/null
metrics_list_services >/dev/null
metrics_backup_complete "success" "done" "extra" "args"
metrics_backup_complete "success" "twice"
echo "END $- $(shopt -p failglob nocasematch | tr '\n' ' ')"
"""


def test_never_fails_a_strict_script_with_the_server_down_and_bad_arguments(dirs):
    proc = run_bash(STRICT_CALLER, lib_env(dirs, url=dead_url(), BACKWATCH_TIMEOUT="2"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.startswith("END "), out
    assert "shopt -s failglob" in out and "shopt -s nocasematch" in out  # options restored
    assert {"e", "u", "E", "C"} <= set(out.split()[1])
    err = proc.stderr.decode()
    assert "ERR trap fired" not in err
    assert "no backup in progress" in err
    assert "not a number of bytes" in err
    assert "cannot reach" in err and "spooled" in err
    assert all(line.startswith("backwatch: ") for line in err.splitlines()), err
    status = status_file(dirs, "svc")
    # a, b, c (size 0: not a number), d (12 bytes); the empty name is not a file.
    assert (status["files_processed"], status["total_size_bytes"]) == (4, 12)
    assert status["status"] == "success" and status["message"] == "done"
    assert len(spooled(dirs)) == 7  # start, the bare update, 4 files, finish


def test_never_fails_when_metrics_dir_and_spool_are_read_only():
    need_tool("setpriv")
    need(os.geteuid() == 0, "needs root to run the script as nobody")
    base = Path(tempfile.mkdtemp(prefix="bw-ro-"))
    try:
        base.chmod(0o755)
        ro = base / "readonly"
        ro.mkdir()
        ro.chmod(0o555)
        dirs = {"metrics": ro / "metrics", "spool": ro / "spool"}
        (ro / "metrics").mkdir()
        (ro / "metrics").chmod(0o555)
        assert LIB.stat().st_mode & stat.S_IROTH
        env = lib_env(dirs, url=dead_url(), HOME=str(ro))
        proc = run_bash(SEED000 + "metrics_get_status plex\n", env, as_nobody=True)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.decode()
        assert out.startswith("END\n")
        assert json.loads(out.split("\n", 1)[1])["status"] == "unknown"
        err = proc.stderr.decode()
        assert "cannot write" in err
        assert "report lost" in err  # the spool cannot be written either: said, not fatal
        assert list((ro / "metrics").iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_without_curl_reports_wait_in_the_spool_for_backwatch_spool_flush(server, dirs, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mv", "mkdir", "rm", "sleep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = lib_env(dirs, server, PATH=str(bin_dir))
    proc = run_bash(SEED000, env, bash=shutil.which("bash") or "bash")
    assert proc.returncode == 0, proc.stderr
    assert b"curl is not installed" in proc.stderr
    assert proc.stderr.count(b"curl is not installed") == 1
    assert len(spooled(dirs)) == 6
    assert status_file(dirs, "plex")["status"] == "success"

    flush = run_cli(
        "spool", "flush", "--dir", str(dirs["spool"]), "--url", server.url,
        "--token", server.token,
    )  # fmt: skip
    assert flush.returncode == 0, flush.stderr
    assert "delivered 6, rejected 0, remaining 0" in flush.stdout
    [run] = ServerApi(server.url, server.token).runs("plex")
    assert (run["status"], run["files"], run["size_bytes"]) == ("success", 3, 3149824)


def test_caller_xtrace_does_not_show_the_library_internals(dirs):
    proc = run_bash("set -x\n" + SEED000, lib_env(dirs))
    assert proc.returncode == 0
    traced = proc.stderr.decode()
    assert "metrics_backup_start plex" in traced
    assert "_bw_" not in traced.replace("+ _bw_call", "")


def _rejected_names(spool: Path) -> Iterator[str]:
    yield from (p.name for p in (spool / "rejected").glob("*.json"))


def test_a_refused_report_is_kept_aside_not_retried(server, dirs):
    """A 4xx other than 409 (here: a run the server does not know) is set aside with the
    reason and never blocks what follows."""
    script = """
metrics_backup_start svc d p
_BW_RUN_ID=unknownrun0000000000000
metrics_file_backup_complete /a 1 success
metrics_backup_start svc d p
metrics_backup_complete success fine
"""
    proc = run_bash(script, lib_env(dirs, server))
    assert proc.returncode == 0
    assert b"the server refused POST /api/v1/runs/unknownrun" in proc.stderr
    assert len(list(_rejected_names(dirs["spool"]))) == 1
    runs = ServerApi(server.url, server.token).runs("svc")
    assert [r["status"] for r in runs] == ["running", "success"]


def test_the_token_may_come_from_a_file(server, dirs, tmp_path):
    """BACKWATCH_TOKEN_FILE (a container secret) when BACKWATCH_TOKEN is unset; a file
    that cannot be read is a warning, and the script still succeeds."""
    secret = tmp_path / "token"
    secret.write_text(server.token + "\n")
    env = lib_env(dirs, url=server.url, BACKWATCH_TOKEN_FILE=str(secret))
    proc = run_bash("metrics_backup_start filed d p\nmetrics_backup_complete success ok", env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert [r["status"] for r in ServerApi(server.url, server.token).runs("filed")] == ["success"]
    env["BACKWATCH_TOKEN_FILE"] = str(tmp_path / "missing")
    proc = run_bash("metrics_backup_start other d p", env)
    assert proc.returncode == 0
    assert b"cannot read BACKWATCH_TOKEN_FILE" in proc.stderr


def test_a_wrong_base_url_keeps_reports_for_the_right_one(server, dirs):
    """A 404 that is not backwatch's own "no such run" (BACKWATCH_URL with a wrong path)
    must not throw reports away: they wait, and a flush to the right URL delivers them."""
    env = lib_env(dirs, server, BACKWATCH_URL=server.url + "/wrong/prefix")
    proc = run_bash(SEED000, env)
    assert proc.returncode == 0, proc.stderr
    assert b"base URL" in proc.stderr
    assert len(spooled(dirs)) == 6
    assert not (dirs["spool"] / "rejected").exists()
    wrong = run_cli(
        "spool", "flush", "--dir", str(dirs["spool"]), "--url", server.url + "/wrong",
        "--token", server.token,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert len(spooled(dirs)) == 6
    right = run_bash("metrics_list_services >/dev/null\n", lib_env(dirs, server))
    assert right.returncode == 0
    assert len(spooled(dirs)) == 6  # listing sends nothing
    run_bash(SEED000, lib_env(dirs, server))
    assert spooled(dirs) == []
    runs = ServerApi(server.url, server.token).runs("plex")
    assert [(r["status"], r["files"]) for r in runs] == [("success", 3), ("success", 3)]


def test_the_library_passes_shellcheck():
    shellcheck = need_tool("shellcheck")
    proc = subprocess.run(
        [shellcheck, "-s", "bash", str(LIB)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout
