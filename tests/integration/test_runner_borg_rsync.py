"""``backwatch run`` on real borg and rsync jobs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import need_tool
from tests.integration.runner_support import make_tree, run_job, tree_size, write_config


def test_a_borg_job_backs_up_and_prunes(tmp_path: Path) -> None:
    need_tool("borg")
    tree = make_tree(tmp_path / "home", files=100)
    (tmp_path / "pass").write_text("borg-passphrase\n")
    env = {**os.environ, "BORG_PASSPHRASE": "borg-passphrase", "BORG_BASE_DIR": str(tmp_path)}
    # no key derivation on every borg start: the test is about the runner, not the crypto
    subprocess.run(
        ["borg", "init", "-e", "none", str(tmp_path / "repo")],
        env=env,
        check=True,
        capture_output=True,
    )
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "home"
tool = "borg"
env = {{BORG_BASE_DIR = "{tmp_path}"}}
[jobs.borg]
repository = "{tmp_path / "repo"}"
passphrase_file = "{tmp_path / "pass"}"
paths = ["{tree}"]
archive_name = "home-{{now:%Y-%m-%dT%H:%M:%S.%f}}"
[jobs.retention]
keep_last = 1
""",
    )
    proc, first = run_job(config, "home")
    assert proc.returncode == 0, proc.stderr
    assert first is not None and first["status"] == "success", first
    assert first["files"] == 100 and first["files_new"] == 100
    # borg's original_size counts the files' bytes plus their metadata
    assert first["size_bytes"] == first["stats"]["original_size"] >= tree_size(tree)
    assert first["bytes_added"] == first["stats"]["deduplicated_size"] > 0
    assert [p["name"] for p in first["phases"]] == ["backup", "prune", "compact"]

    proc, second = run_job(config, "home")
    assert proc.returncode == 0, proc.stderr
    assert second is not None and second["status"] == "success"
    archives = json.loads(
        subprocess.run(
            ["borg", "list", "--json", str(tmp_path / "repo")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["archives"]
    assert len(archives) == 1  # keep_last = 1 pruned the first archive
    assert archives[0]["name"] == second["stats"]["archive"]["name"]


def test_an_rsync_job_and_a_failing_one(tmp_path: Path) -> None:
    need_tool("rsync")
    tree = make_tree(tmp_path / "src", files=50)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "mirror"
tool = "rsync"
[jobs.rsync]
paths = ["{tree}/"]
destination = "{tmp_path / "dst"}/"

[[jobs]]
id = "broken"
tool = "rsync"
[jobs.rsync]
paths = ["{tmp_path / "missing"}/"]
destination = "{tmp_path / "dst2"}/"
""",
    )
    proc, run = run_job(config, "mirror")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success"
    assert run["files"] == 50 and run["size_bytes"] == tree_size(tree)
    assert run["bytes_added"] == tree_size(tree)  # all of it was sent
    assert (tmp_path / "dst" / "d0" / "f000.bin").read_bytes() == (
        tree / "d0/f000.bin"
    ).read_bytes()

    proc, failed = run_job(config, "broken")
    assert proc.returncode == 1
    assert failed is not None and failed["status"] == "failed"
    assert failed["exit_code"] == 23
    assert "missing" in failed["message"] or "23" in failed["message"]
