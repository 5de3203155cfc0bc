"""The tools a job can name are declared once (job_settings.TOOLS); runners/ has one runner
for each of them, and the messages and checks that list tools read the same declaration."""

from __future__ import annotations

import pytest

from backwatch.errors import ConfigError
from backwatch.job_settings import TOOLS
from backwatch.runners import runner_for, runner_names
from backwatch.settings import load_settings


def test_every_tool_of_the_settings_has_a_runner_and_no_other() -> None:
    assert sorted(runner_names()) == sorted(TOOLS)


def test_an_unknown_tool_names_every_known_one() -> None:
    with pytest.raises(ConfigError) as caught:
        runner_for("duplicity", "photos")
    for name in TOOLS:
        assert name in caught.value.message


def test_a_retention_on_a_tool_that_cannot_prune_names_those_that_can(tmp_path) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text(
        '[[jobs]]\nid = "web"\ntool = "rsync"\n'
        '[jobs.rsync]\npaths = ["/srv/"]\ndestination = "/mnt/b"\n'
        "[jobs.retention]\nkeep_daily = 7\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "only restic, borg and builtin jobs apply a retention" in caught.value.message
