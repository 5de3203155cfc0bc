"""Helpers of the runner tests (test_runner_*.py): a generated tree, a config file, and
``backwatch run`` in a subprocess with its JSON run record."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from backwatch.cli.target import resolve
from tests.conftest import BACKWATCH

FILES = 300


def make_tree(root: Path, files: int = FILES) -> Path:
    rng = random.Random(7)
    for i in range(files):
        folder = root / f"d{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03}.bin").write_bytes(rng.randbytes(10_000 + i))
    return root


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def change_three(tree: Path) -> None:
    for name in ("d0/f000.bin", "d1/f001.bin", "d2/f002.bin"):
        with open(tree / name, "ab") as fh:
            fh.write(b"changed")


def write_config(path: Path, data_dir: Path, body: str) -> Path:
    path.write_text(f'data_dir = "{data_dir}"\n\n{body}')
    return path


def run_job(
    config: Path, job: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """``backwatch run JOB --json`` (in-process, as the console script runs it; the tools
    run as real processes): the outcome and the run record it printed."""
    from typer.testing import CliRunner

    from backwatch.cli import app

    result = CliRunner().invoke(
        app, ["run", job, "--json", "--config", str(config), *args], env=env
    )
    proc = subprocess.CompletedProcess(
        ["backwatch", "run", job], result.exit_code, result.stdout, result.stderr
    )
    record = None
    if proc.stdout.strip().startswith("{"):
        record = json.loads(proc.stdout)
    return proc, record


def start_job(config: Path, job: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BACKWATCH, "run", job, "--json", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored_runs(data_dir: Path, job: str) -> list[dict[str, Any]]:
    """The stored runs of ``job``, newest first, each with phases and events."""
    tgt = resolve(
        url=None, token=None, db=str(data_dir / "backwatch.db"), config=None, data_dir=str(data_dir)
    )
    try:
        items = tgt.list_runs(job=job, limit=50)["items"]
        return [tgt.get_run(item["id"]) for item in items]
    finally:
        tgt.close()
