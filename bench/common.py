"""Shared helpers for the benchmarks: free ports, a real ``backwatch serve``, percentiles.

Every benchmark prints one line ``RESULT {json}`` that ``run_all.py`` collects; the rest of
its output is for people. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
BACKWATCH = str(VENV_BIN / "backwatch") if (VENV_BIN / "backwatch").exists() else "backwatch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Server:
    """A real ``backwatch serve`` on a free 127.0.0.1 port, stopped on exit."""

    def __init__(self, data_dir: Path, *, extra: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "serve.log"

    def __enter__(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKWATCH_")}
        cmd = [BACKWATCH, "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--log-level", "warning", *self.extra]
        self._log_fh = self.log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log_fh, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(self.url + "/health", timeout=60, proc=self.proc)
        except RuntimeError:
            stop(self.proc)
            sys.stderr.write(self.log.read_text())
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def get(self, path: str, token: bool = True) -> Any:
        req = urllib.request.Request(self.url + path)
        if token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            stop(self.proc)
        self._log_fh.close()


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory on the same disk as the repository's data would be."""
    with tempfile.TemporaryDirectory(prefix=f"backwatch-bench-{prefix}-") as d:
        yield Path(d)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0–100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def result(name: str, **figures: Any) -> None:
    """The machine-readable line run_all.py collects."""
    print("RESULT " + json.dumps({"bench": name, **figures}, sort_keys=True), flush=True)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20
