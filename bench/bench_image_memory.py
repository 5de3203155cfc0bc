"""Idle RSS of ``backwatch serve`` as the container image runs it (issue 17; seed 001's
compose file promised ~64 MB typical, 128 MB limit).

The image's file system is mounted (``podman image mount``) and its entrypoint (tini, then
``backwatch serve``) runs there with ``chroot`` as the image's user and environment, in a
mount namespace of its own (/proc, /dev, a /tmp, a fresh /data): what a container runs,
without a container engine that can start one. Then the same requests as bench_memory.py's
idle case, 2 s to settle, and RSS of the server process; again after a minute of idling
(two rounds of the alert tick). Needs root and an image built by ``make image``.

    .venv/bin/python bench/bench_image_memory.py [IMAGE]     (default localhost/backwatch:dev)

Not part of run_all.py: it needs the image, which takes minutes to build.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, result, rss_mb, stop, wait_http

SEED_001_TYPICAL_MB = 64
SEED_001_LIMIT_MB = 128


def _podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout


def _command(rootfs: str, data: Path, config: dict[str, Any], port: int) -> list[str]:
    env = [*config["Config"]["Env"]]
    user = config["Config"]["User"]
    argv = [*config["Config"]["Entrypoint"], "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", "/data"]
    inner = [
        f"mount -t proc proc {rootfs}/proc",
        f"mount --rbind /dev {rootfs}/dev",
        f"mount -t tmpfs -o mode=1777 tmpfs {rootfs}/tmp",
        f"mount --bind {data} {rootfs}/data",
        "cd /",
        shlex.join(
            [
                *("exec", "chroot", f"--userspec={user}", rootfs, "env", "-i", *env),
                *("sh", "-c", 'cd /data && exec "$@"', "-", *argv),
            ]
        ),
    ]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(inner)]


def main() -> int:
    image = sys.argv[1] if len(sys.argv) > 1 else "localhost/backwatch:dev"
    (config,) = json.loads(_podman("image", "inspect", image))
    uid, gid = (int(part) for part in config["Config"]["User"].split(":"))
    rootfs = _podman("image", "mount", image).strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-image-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir(mode=0o700)
        os.chown(data, uid, gid)
        log = Path(scratch) / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen(_command(rootfs, data, config, port), stdout=out, stderr=out)
        try:
            wait_http(url + "/livez", timeout=120, proc=proc)
            tini = psutil.Process(proc.pid)  # unshare, sh, chroot and env exec into tini
            (server,) = tini.children()
            token = (data / "token").read_text().strip()
            for path in ("/health", "/api/v1/jobs", "/api/v1/summary", "/api/v1/runs"):
                request = urllib.request.Request(url + path)
                request.add_header("Authorization", f"Bearer {token}")
                urllib.request.urlopen(request, timeout=60).read()
            time.sleep(2)
            idle = round(rss_mb(server.pid), 1)
            tini_mb = round(rss_mb(tini.pid), 1)
            time.sleep(60)
            idle_60 = round(rss_mb(server.pid), 1)
            uss_60 = round(server.memory_full_info().uss / 2**20, 1)  # its own pages only
        finally:
            stop(proc)
            _podman("image", "unmount", image)
    figures = {
        "image": image,
        "image_id": config["Id"][:12],
        "idle_mb": idle,
        "idle_after_60s_mb": idle_60,
        "uss_after_60s_mb": uss_60,
        "tini_mb": tini_mb,
        "seed_001_mb": {"typical": SEED_001_TYPICAL_MB, "limit": SEED_001_LIMIT_MB},
    }
    print(f"serve from {image}: RSS idle {idle} MB, after 60 s {idle_60} MB (USS {uss_60} MB)")
    result("image_memory", **figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
