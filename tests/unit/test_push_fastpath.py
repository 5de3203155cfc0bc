"""``backwatch push``, ``run`` and ``backup`` parsed without Typer mean exactly what Typer
would have parsed.

The fast parser (``cli.fastpath``) and the Typer command are both built from ``OPTIONS``
(``cli.push``, ``cli.run``, ``cli.backup``). Here the same command lines go through both:
whenever the fast parser accepts a line, Typer must accept it too and hand the command the
very same values; every line Typer refuses (or answers with help) the fast parser must
leave to Typer.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backwatch.cli import backup, push, run
from backwatch.cli.fastpath import parse
from backwatch.cli.options import Option
from backwatch.cli.params import command_from
from backwatch.cli.root import _Root

ENVVARS = sorted(o.envvar for o in push.OPTIONS if o.envvar)
LONG = [f for o in push.OPTIONS for f in o.flags if f.startswith("--")]
FLAGS = [f for o in push.OPTIONS for f in o.flags]
VALUES = ["photos", "12", "-3", "1.5", "1.0", "abc", "", "-", "a=1", "1e3", " 7", "true"]
VALUES += ["--job", "-q", "inf", "1_000"]  # not nan: nan != nan
ODD = ["--nope", "extra", "--", "-h", "--help", "-qj", "-jx", "--quiet=1", "--no-quiet", "-"]


def via_typer(
    args: list[str], env: dict[str, str], command: Any = push
) -> tuple[int, dict[str, Any] | None]:
    """Exit code and the values Typer hands a command built from ``command.OPTIONS``."""
    received: list[dict[str, Any]] = []

    def record(**values: Any) -> None:
        received.append(values)

    name = command.__name__.rsplit(".", 1)[-1]
    record.__name__ = name
    app = typer.Typer(cls=_Root, add_completion=False)
    app.command()(command_from(record, command.OPTIONS))
    app.callback()(lambda: None)  # a group, as in the real root: `backwatch push …`
    envvars = sorted(o.envvar for o in command.OPTIONS if o.envvar)
    full_env: dict[str, str | None] = {name: env.get(name) for name in envvars}
    result = CliRunner().invoke(app, [name, *args], env=full_env)
    return result.exit_code, (received[0] if received else None)


def assert_same_as_typer(
    args: list[str], env: dict[str, str], command: Any = push
) -> dict[str, Any] | None:
    fast = parse(args, command.OPTIONS, env)
    code, values = via_typer(args, env, command)
    if fast is not None:
        assert code == 0, (args, env)
        assert values == fast, (args, env)
    return fast


@pytest.mark.parametrize(
    "args",
    [
        ["--job", "photos"],
        ["-j", "photos", "-s", "failed", "-m", "disk full", "-q"],
        ["--job=photos", "--duration=12.5", "--size=1048576", "--id=r1", "--quiet"],
        ["--job", "photos", "--phase", "dump=3", "-p", "upload=1.5", "--exit-code", "0"],
        ["--json", "-", "--url", "http://127.0.0.1:5001", "--token", "t"],
        ["--job", "a", "--job", "b", "--size", "1", "--size", "2"],  # the last one counts
        ["--job", "photos", "--message="],
        [
            "--job", "photos", "--started-at", "2026-01-07T02:00:00Z", "--finished-at", "x",
            "--files", "3", "--files-new", "1", "--files-changed", "2", "--bytes-added", "9",
            "--log-file", "/var/log/b.log", "--tool", "restic", "--host", "h1",
            "--pushgateway", "http://127.0.0.1:9091", "--db", "x.db", "-c", "b.toml",
            "--data-dir", "d",
        ],
    ],
)  # fmt: skip
def test_the_forms_scripts_use_take_the_fast_path(args: list[str]) -> None:
    assert assert_same_as_typer(args, {}) is not None


def test_environment_variables_stand_in_for_missing_options() -> None:
    env = {"BACKWATCH_URL": "http://127.0.0.1:5001", "BACKWATCH_TOKEN": "t"}
    env |= {"BACKWATCH_PUSHGATEWAY": "", "BACKWATCH_DATA_DIR": "/srv/d"}  # empty: unset
    values = assert_same_as_typer(["--job", "photos", "--token", "given"], env)
    assert values is not None
    assert (values["url"], values["token"], values["pushgateway"]) == (
        env["BACKWATCH_URL"],
        "given",
        None,
    )
    assert values["data_dir"] == "/srv/d"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["--job", "photos", "--help"],
        ["--job", "photos", "--nope"],
        ["--job", "photos", "extra"],
        ["--job", "photos", "--size", "abc"],
        ["--job", "photos", "--size", "1.0"],
        ["--job"],
        ["--quiet=1"],
        ["-qj", "photos"],
        ["--job", "photos", "--", "--id"],
        ["--job", "photos", "--duration", "-5"],  # a value that looks like an option
    ],
)
def test_help_errors_and_unusual_forms_are_left_to_typer(args: list[str]) -> None:
    assert parse(args, push.OPTIONS, {}) is None


def test_every_option_is_typers_option() -> None:
    """The Typer command has exactly the declared flags (nothing added or renamed)."""
    from typer.main import get_command

    app = typer.Typer(add_completion=False)
    app.command()(command_from(push.push, push.OPTIONS))
    command = get_command(app)
    declared = {o.name: (sorted(o.flags), o.envvar, o.multiple) for o in push.OPTIONS}
    built = {
        p.name: (sorted(p.opts + p.secondary_opts), p.envvar, p.multiple) for p in command.params
    }
    assert built == declared


def test_an_environment_variable_needs_a_single_valued_option() -> None:
    with pytest.raises(ValueError, match="single-valued"):
        Option("phase", str, "NAME=SECONDS", multiple=True, envvar="BACKWATCH_PHASE")


words = st.one_of(
    st.sampled_from(FLAGS).map(lambda f: [f]),
    st.tuples(st.sampled_from(FLAGS), st.sampled_from(VALUES)).map(list),
    st.tuples(st.sampled_from(LONG), st.sampled_from(VALUES)).map(lambda p: ["=".join(p)]),
    st.sampled_from(ODD + VALUES).map(lambda w: [w]),
)
command_lines = st.lists(words, max_size=8).map(lambda parts: [w for p in parts for w in p])
environments = st.dictionaries(st.sampled_from(ENVVARS), st.sampled_from(VALUES), max_size=3)


@settings(max_examples=300, deadline=None)
@given(command_lines, environments)
def test_any_command_line_means_the_same_on_both_paths(args: list[str], env: dict) -> None:
    assert_same_as_typer(args, env)


# --- backwatch run JOB: one argument among the options ----------------------------------

RUN_FLAGS = [f for o in run.OPTIONS for f in o.flags]


@pytest.mark.parametrize(
    "args",
    [
        ["nightly"],
        ["nightly", "--json"],
        ["--verbose", "nightly", "-c", "/etc/backwatch.toml"],
        ["nightly", "--dry-run", "-v", "--data-dir=/srv/d", "--db", "x.db"],
        ["nightly", "--url", "http://127.0.0.1:5001", "--token", "t"],
    ],
)
def test_the_forms_cron_and_timers_use_take_the_fast_path(args: list[str]) -> None:
    values = assert_same_as_typer(args, {}, run)
    assert values is not None and values["job"] == "nightly"


@pytest.mark.parametrize(
    "args",
    [
        [],  # the job is missing
        ["--json"],
        ["nightly", "weekly"],  # one job only
        ["nightly", "--help"],
        ["-x", "nightly"],
        ["nightly", "--dry-run=1"],
        ["nightly", "--", "-v"],
    ],
)
def test_run_lines_the_fast_parser_does_not_take(args: list[str]) -> None:
    assert parse(args, run.OPTIONS, {}) is None
    assert_same_as_typer(args, {}, run)


def test_an_argument_has_no_flags() -> None:
    with pytest.raises(ValueError, match="without flags"):
        Option("job", str, "a job", "--job", argument=True)


run_words = st.one_of(
    st.sampled_from(RUN_FLAGS).map(lambda f: [f]),
    st.tuples(st.sampled_from(RUN_FLAGS), st.sampled_from(VALUES)).map(list),
    st.sampled_from(["nightly", "weekly", "-", "--", "--help", "-x", ""]).map(lambda w: [w]),
)
run_lines = st.lists(run_words, max_size=6).map(lambda parts: [w for p in parts for w in p])


@settings(max_examples=200, deadline=None)
@given(run_lines, environments)
def test_any_run_line_means_the_same_on_both_paths(args: list[str], env: dict) -> None:
    assert_same_as_typer(args, env, run)


# --- backwatch backup [JOB]: an argument that may be left out, several repeatable options ---

BACKUP_FLAGS = [f for o in backup.OPTIONS for f in o.flags]


@pytest.mark.parametrize(
    "args",
    [
        ["docs"],
        ["--source", "/srv/a", "-s", "/srv/b", "--dest", "/mnt/x", "--no-record"],
        ["-s", "/srv", "-d", "/mnt/x", "-d", "/mnt/y", "--json", "--level", "9", "-e", "*.tmp"],
        ["docs", "--full", "--checksum", "--dry-run", "--dump", "db=pg_dump app"],
        ["--name", "photos", "--source=/srv/p", "--dest=/mnt/p", "-c", "b.toml"],
    ],
)
def test_the_forms_of_a_nightly_backup_take_the_fast_path(args: list[str]) -> None:
    assert assert_same_as_typer(args, {}, backup) is not None


@pytest.mark.parametrize(
    "args",
    [["docs", "photos"], ["--help"], ["--level", "x"], ["--source"], ["--full=1"], ["-x"]],
)
def test_backup_lines_the_fast_parser_does_not_take(args: list[str]) -> None:
    assert parse(args, backup.OPTIONS, {}) is None
    assert_same_as_typer(args, {}, backup)


def test_an_argument_left_out_takes_its_default() -> None:
    values = assert_same_as_typer(["--dest", "/mnt/x"], {}, backup)
    assert values is not None and values["job"] is None and values["source"] is None


backup_words = st.one_of(
    st.sampled_from(BACKUP_FLAGS).map(lambda f: [f]),
    st.tuples(st.sampled_from(BACKUP_FLAGS), st.sampled_from(VALUES)).map(list),
    st.sampled_from(["docs", "photos", "-", "--", "-x", ""]).map(lambda w: [w]),
)
backup_lines = st.lists(backup_words, max_size=6).map(lambda ps: [w for p in ps for w in p])


@settings(max_examples=200, deadline=None)
@given(backup_lines, environments)
def test_any_backup_line_means_the_same_on_both_paths(args: list[str], env: dict) -> None:
    assert_same_as_typer(args, env, backup)
