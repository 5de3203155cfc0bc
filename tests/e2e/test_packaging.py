"""The built wheel is the whole of backwatch: installed into a clean virtual environment
(no system site-packages, dependencies from the package index) it has every file of the
source package (templates, static files and the vendored Chart.js, alembic.ini and the
migrations, the shell library), prints its version and serves from a fresh SQLite
database. ``pipx install`` of the same wheel works too.

Slow (a minute or two): the clean environment installs every dependency from the index.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, need, scrub_environment

pytestmark = pytest.mark.slow
PACKAGE = ROOT / "src" / "backwatch"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _package_files(top: Path) -> set[str]:
    """Every file of the package below ``top``, relative to it; caches left out."""
    return {
        str(path.relative_to(top))
        for path in top.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _clean_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    scrub_environment(env)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def _run(*args: str | Path, timeout: float = 300, **kwargs: object) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (the build leaves nothing behind in
    it): ``pip wheel --no-deps``, the backend from pyproject's [build-system]."""
    need(importlib.util.find_spec("pip") is not None, "pip is not installed")
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    dist = work / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source)
    (built,) = dist.glob("backwatch-*.whl")
    assert built.name == f"backwatch-{VERSION}-py3-none-any.whl"
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv (no system site-packages) with the wheel and its dependencies."""
    need(importlib.util.find_spec("ensurepip") is not None, "venv needs ensurepip (python3-venv)")
    where = tmp_path_factory.mktemp("venv") / "venv"
    _run(sys.executable, "-m", "venv", where)
    pip = [where / "bin" / "python", "-m", "pip", "install", "-q"]
    _run(*pip, wheel, env=_clean_env(), timeout=600)
    return where


def _installed_package(python: Path) -> Path:
    code = "import backwatch, pathlib; print(pathlib.Path(backwatch.__file__).parent)"
    return Path(_run(python, "-c", code, env=_clean_env(), cwd="/").strip())


def test_the_wheel_installs_every_file_of_the_package(venv: Path) -> None:
    installed = _installed_package(venv / "bin" / "python")
    assert installed.is_relative_to(venv), installed  # not the checkout's editable install
    wanted = _package_files(PACKAGE)
    non_python = {f for f in wanted if not f.endswith(".py")}
    # the data files a working server needs, named, so an empty source tree cannot pass
    for needed in (
        "web/templates/base.html",
        "web/static/app.js",
        "web/static/vendor/chart.umd.min.js",
        "store/alembic.ini",
        "store/migrations/script.py.mako",
        "shell/backwatch.sh",
    ):
        assert needed in non_python
    assert any(f.startswith("store/migrations/versions/") for f in wanted)
    missing = sorted(wanted - _package_files(installed))
    assert missing == [], f"the wheel lacks {missing}"


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [venv / "bin" / "backwatch", "serve", "--port", str(port), "--data-dir", "data"],
            cwd=tmp_path,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.2)
        else:
            raise AssertionError(f"serve never got ready: {log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (tmp_path / "data" / "backwatch.db").is_file()  # migrated a fresh SQLite db


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def test_the_installed_command_serves_with_its_data_files(venv: Path, served: str) -> None:
    version = _run(venv / "bin" / "backwatch", "--version", env=_clean_env(), cwd="/")
    assert version.strip() == f"backwatch {VERSION}"
    status, page = _get(served + "/")  # a template, rendered
    assert status == 200 and b"<html" in page.lower()
    status, chart = _get(served + "/static/vendor/chart.umd.min.js")
    assert status == 200 and len(chart) > 100_000
    status, health = _get(served + "/health")
    assert status == 200 and f'"version":"{VERSION}"'.encode() in health.replace(b" ", b"")
    lib = _run(venv / "bin" / "backwatch", "shell-lib", "--path", env=_clean_env(), cwd="/")
    assert Path(lib.strip()).is_relative_to(venv)
    _run("bash", "-n", lib.strip())


def test_pipx_installs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    pipx = shutil.which("pipx") or shutil.which("pipx", path=str(Path(sys.executable).parent))
    need(pipx is not None, "pipx is not installed (dev extras or Debian's pipx)")
    assert pipx is not None
    env = _clean_env(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    _run(pipx, "install", wheel, env=env, timeout=600)
    version = _run(tmp_path / "bin" / "backwatch", "--version", env=env, cwd="/")
    assert version.strip() == f"backwatch {VERSION}"
    venv_python = next((tmp_path / "pipx" / "venvs" / "backwatch" / "bin").glob("python"))
    installed = _installed_package(venv_python)
    assert installed.is_relative_to(tmp_path / "pipx")
    missing = sorted(_package_files(PACKAGE) - _package_files(installed))
    assert missing == [], f"pipx's install lacks {missing}"
