"""The suite never reads the checkout's config, data, token or the user's environment.

After the README's tour a checkout holds ``./backwatch.toml`` and ``./data`` (database,
token), and the shell exports ``BACKWATCH_URL``; ``make test`` must still pass there. Here
a representative part of the suite runs in a directory holding a broken config and junk
data, with BACKWATCH_* variables pointing at nonsense (tests/conftest.py isolates it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

#: a config file, settings from CLI flags, the CLI in-process and against a real server
SUBSET = [
    "tests/unit/test_settings.py",
    "tests/integration/test_cli_local.py::test_push_status_history_list",
    "tests/integration/test_cli_local.py::test_tokens",
    "tests/e2e/test_cli_server.py::test_the_sample_line_is_seed_001s",
    "tests/e2e/test_cli_server.py::test_start_phase_finish",
]


def test_the_suite_ignores_the_checkouts_config_data_and_environment(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "data").mkdir(parents=True)
    (checkout / "backwatch.toml").write_text('[server\nport = "not a port"\n')
    (checkout / "data" / "token").write_text("not-a-token\n")
    (checkout / "data" / "backwatch.db").write_bytes(b"this is not a database\n" * 100)
    (checkout / "data" / "metrics.jsonl").write_text("{not json\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env |= {
        "BACKWATCH_URL": "http://127.0.0.1:9/nowhere",
        "BACKWATCH_TOKEN": "bw_nonsense",
        "BACKWATCH_DATA_DIR": str(checkout / "data"),
        "BACKWATCH_CONFIG": str(checkout / "backwatch.toml"),
        "BACKWATCH_DATABASE_URL": "sqlite:////nonexistent/backwatch.db",
        "RETENTION_DAYS": "not a number",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not postgresql",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
         *(str(ROOT / t) for t in SUBSET)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-2000:]
    # and nothing was written into the "checkout"
    assert sorted(p.name for p in checkout.iterdir()) == ["backwatch.toml", "data"]
    assert sorted(p.name for p in (checkout / "data").iterdir()) == [
        "backwatch.db",
        "metrics.jsonl",
        "token",
    ]


def test_no_test_reads_the_shared_folder_beside_the_checkout() -> None:
    """The seeds the tests need are copied into tests/fixtures/seeds/."""
    needle = re.compile(r"""["']\.\./shared|/\s*["']shared["']|work/shared""")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name != Path(__file__).name
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if needle.search(line)
    ]
    assert found == []
    assert sorted((ROOT / "tests" / "fixtures" / "seeds").glob("00[13]_*.md"))
