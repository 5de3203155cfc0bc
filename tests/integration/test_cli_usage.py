"""The command line in-process (CliRunner): help for every command, one-line errors.

The same checks through the real ``backwatch`` process are in tests/e2e/test_cli_*.py; here
they are cheap enough to cover every command and every bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from backwatch.cli import app

ROOT_COMMAND = get_command(app)


def _commands() -> list[tuple[str, ...]]:
    """Every command path: ("push",), ("token", "create"), …"""
    paths: list[tuple[str, ...]] = []
    for name, command in ROOT_COMMAND.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            paths.extend((name, sub) for sub in subcommands)
        else:
            paths.append((name,))
    return sorted(paths)


def _command(path: tuple[str, ...]) -> Any:
    command = ROOT_COMMAND
    for part in path:
        command = command.commands[part]  # type: ignore[attr-defined]
    return command


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No server, token, config or spool from the environment of whoever runs the tests."""
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def assert_one_line_error(result: Any, *needles: str) -> str:
    """A non-zero exit with one ``error: …`` line on stderr that names the problem."""
    assert result.exit_code not in (0, None), result.stdout
    stderr = result.stderr
    assert "Traceback" not in stderr
    assert "internal error" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)
    return lines[0]


def test_the_registered_commands_are_the_documented_ones() -> None:
    names = {path[0] for path in _commands()}
    core = {"serve", "push", "start", "phase", "finish", "wrap", "import"}
    core |= {"status", "history", "list", "token", "db"}
    assert core <= names
    assert {p for p in _commands() if p[0] in ("token", "db")} >= {
        ("token", "create"),
        ("token", "list"),
        ("token", "revoke"),
        ("db", "migrate"),
        ("db", "prune"),
        ("db", "vacuum"),
    }


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    command = _command(path)
    assert command.help and command.help.strip(), f"backwatch {' '.join(path)} has no help"
    summary = command.help.strip().split("\n\n")[0]  # what `backwatch --help` lists
    assert len(summary) <= 120, f"the summary of {path} is too long: {summary!r}"
    assert summary[:30] in result.stdout


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_option_and_argument_has_help(path: tuple[str, ...]) -> None:
    command = _command(path)
    missing = [p.name for p in command.params if not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"backwatch {' '.join(path)}: no help text for {missing}"


def test_serve_help_reads_well() -> None:
    serve = ROOT_COMMAND.commands["serve"]  # type: ignore[attr-defined]
    summary = serve.help.split("\n\n")[0]
    assert summary.startswith("Run the server") and len(summary) <= 60
    assert "\n" not in serve.help.split("\n\n")[1]  # paragraphs wrap to the terminal
    result = invoke("--help")
    assert result.exit_code == 0
    serve_lines = [line for line in result.stdout.splitlines() if " serve " in line]
    assert len(serve_lines) == 1, result.stdout  # the short help fits on one line


def test_version() -> None:
    from backwatch import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


# --- bad input: one line naming the problem, never a traceback --------------------------


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A real SQLite database with one job ("photos") and one run in it."""
    path = tmp_path / "bw.db"
    result = invoke("push", "--db", str(path), "--job", "photos", "--duration", "3")
    assert result.exit_code == 0, result.stderr
    return str(path)


def test_unknown_job_in_status_and_history(db: str) -> None:
    assert_one_line_error(invoke("status", "nope", "--db", db), "'nope'", "not found")
    assert_one_line_error(invoke("history", "nope", "--db", db), "'nope'", "not found")


def test_malformed_json_for_push(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"job": "photos",\n "status": }')
    line = assert_one_line_error(invoke("push", "--json", str(bad), "--db", db), "bad.json")
    assert "malformed JSON at line 2" in line
    line = assert_one_line_error(invoke("push", "--json", "-", "--db", db, input="{oops"))
    assert "standard input" in line and "malformed JSON" in line


def test_push_json_that_is_not_a_report(db: str, tmp_path: Path) -> None:
    doc = tmp_path / "list.json"
    doc.write_text("[1, 2]")
    assert_one_line_error(invoke("push", "--json", str(doc), "--db", db))
    doc.write_text(json.dumps({"job": "photos", "status": "exploded", "started_at": 1e9}))
    assert_one_line_error(invoke("push", "--json", str(doc), "--db", db), "status")


def test_missing_files(db: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.json")
    assert_one_line_error(invoke("push", "--json", missing, "--db", db), "nowhere.json")
    assert_one_line_error(invoke("import", missing, "--db", db), "nowhere.json")
    assert_one_line_error(
        invoke("push", "--job", "photos", "--log-file", missing, "--db", db), "nowhere.json"
    )


@pytest.mark.parametrize("value", ["archive", "=3", "archive=soon", "archive="])
def test_bad_phase(db: str, value: str) -> None:
    line = assert_one_line_error(invoke("push", "--job", "photos", "--phase", value, "--db", db))
    assert "--phase" in line and "NAME=SECONDS" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--job", "Bad Job"], "job"),
        (["--job", "photos", "--status", "exploded"], "status"),
        (["--job", "photos", "--duration", "-5"], "duration_s"),
        (["--job", "photos", "--size", "-1"], "size_bytes"),
        (["--job", "photos", "--started-at", "yesterday"], "started_at"),
        (["--job", "photos", "--duration", "abc"], "--duration"),
        (["--job", "photos", "--size", "1.5"], "--size"),
        ([], "--job"),
    ],
)
def test_bad_push_flags(db: str, args: list[str], needle: str) -> None:
    assert_one_line_error(invoke("push", *args, "--db", db), needle)
    listing = json.loads(invoke("history", "photos", "--db", db, "--json").stdout)
    assert len(listing) == 1  # nothing stored


def test_finishing_an_unknown_run(db: str) -> None:
    assert_one_line_error(invoke("finish", "no-such-run", "--db", db), "'no-such-run'", "not found")
    assert_one_line_error(
        invoke("phase", "no-such-run", "dump", "--start", "--db", db), "not found"
    )


def test_finishing_twice(db: str) -> None:
    run = invoke("start", "photos", "--db", db).stdout.strip()
    assert invoke("finish", run, "--db", db).exit_code == 0
    assert_one_line_error(invoke("finish", run, "--db", db), run, "already finished")


def test_phase_needs_exactly_one_mode(db: str) -> None:
    run = invoke("start", "photos", "--db", db).stdout.strip()
    assert_one_line_error(invoke("phase", run, "dump", "--db", db), "--start")
    assert_one_line_error(invoke("phase", run, "dump", "--start", "--end", "--db", db), "--start")


def test_database_file_that_is_not_sqlite(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is not a database\n" * 10)
    for args in (["status"], ["push", "--job", "x"], ["token", "list"], ["db", "migrate"]):
        assert_one_line_error(invoke(*args, "--db", str(text_file)), "notes.txt", "not a SQLite")
    assert text_file.read_text().startswith("this is not a database")  # left alone


def test_database_path_that_is_a_directory(tmp_path: Path) -> None:
    assert_one_line_error(invoke("list", "--db", str(tmp_path)), "directory")


def test_reading_a_database_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    assert_one_line_error(invoke("status", "--db", str(missing)), "no database", "typo.db")
    assert_one_line_error(invoke("list", "--data-dir", str(tmp_path / "empty")), "no database")
    assert not missing.exists()  # a read does not create it


def test_unreachable_postgresql() -> None:
    url = "postgresql+psycopg://backwatch@127.0.0.1:1/nowhere"
    for args in (["status"], ["push", "--job", "x"], ["db", "migrate"]):
        line = assert_one_line_error(invoke(*args, "--db", url))
        assert "127.0.0.1:1" in line or "127.0.0.1" in line


def test_unsupported_database_url() -> None:
    assert_one_line_error(invoke("status", "--db", "mysql+nodriver://x@127.0.0.1/db"), "database")


def test_bad_config_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport = 5001\n")
    assert_one_line_error(invoke("status", "--config", str(broken)), "broken.toml", "TOML")

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\nprot = 5001\n")
    assert_one_line_error(invoke("list", "-c", str(unknown)), "unknown.toml", "server.prot")

    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[jobs]]\nid = "photos"\ngrace = "soon"\n')
    assert_one_line_error(invoke("list", "-c", str(wrong)), "wrong.toml", "jobs[0].grace")

    assert_one_line_error(invoke("list", "-c", str(tmp_path / "none.toml")), "none.toml")


def test_bad_server_url() -> None:
    line = assert_one_line_error(invoke("status", "--url", "not-a-url"), "not-a-url")
    assert "http://" in line
    assert_one_line_error(invoke("push", "--job", "x", "--url", "ftp://127.0.0.1/"), "ftp://")


def test_dead_server_url(tmp_path: Path) -> None:
    dead = "http://127.0.0.1:1"
    for args in (["status"], ["list"], ["history", "photos"]):
        line = assert_one_line_error(invoke(*args, "--url", dead))
        assert f"cannot reach the server at {dead}" in line
    no_spool = {"BACKWATCH_SPOOL": "0"}
    line = assert_one_line_error(invoke("push", "--job", "x", "--url", dead, env=no_spool))
    assert f"cannot reach the server at {dead}" in line


def test_push_to_a_dead_server_is_spooled(tmp_path: Path) -> None:
    result = invoke("push", "--job", "x", "--url", "http://127.0.0.1:1")
    assert result.exit_code == 0
    assert "Traceback" not in result.stderr
    assert "cannot reach the server" in result.stderr and "spool" in result.stderr
    assert len(list((tmp_path / "spool").glob("*.json"))) == 1


def test_usage_errors_are_one_line_too(db: str) -> None:
    result = invoke("history", "--db", db)
    assert result.exit_code == 2
    assert_one_line_error(result, "Missing argument", "backwatch history --help")
    result = invoke("push", "--job", "x", "--no-such-option", "--db", db)
    assert result.exit_code == 2
    assert_one_line_error(result, "--no-such-option")
    assert_one_line_error(invoke("db", "prune", "--days", "0", "--db", db), "--days")
    assert_one_line_error(invoke("import", "x.jsonl", "--format", "yaml", "--db", db), "--format")
    assert_one_line_error(invoke("history", "photos", "--since", "soon", "--db", db), "--since")


def test_token_errors(db: str) -> None:
    assert_one_line_error(invoke("token", "revoke", "nobody", "--db", db), "'nobody'")
    assert_one_line_error(
        invoke("token", "create", "--name", "h1", "--scope", "root", "--db", db), "scope"
    )
    assert invoke("token", "create", "--name", "h1", "--db", db).exit_code == 0
    assert_one_line_error(invoke("token", "create", "--name", "h1", "--db", db), "'h1'")


def test_wrap_usage_errors(db: str) -> None:
    assert_one_line_error(invoke("wrap", "--db", db, "nightly"), "give the command after --")
    assert_one_line_error(invoke("wrap", "Not A Slug", "--", "true", "--db", db), "slug")
    assert_one_line_error(invoke("wrap", "--timeout", "soon", "x", "--", "true"), "--timeout")


def test_help_paragraphs_wrap_but_examples_keep_their_lines() -> None:
    from backwatch.cli.root import _unwrap

    doc = """Summary line.

    A paragraph of prose that was wrapped at the width of the editor, not of the
    terminal, so its lines are joined.

    Examples:
      backwatch wrap nightly -- restic backup /srv
      backwatch push --job x
    source "$(backwatch shell-lib --path)"
    backwatch shell-lib > lib.sh
    """
    paragraphs = _unwrap(doc).split("\n\n")
    assert paragraphs[0] == "Summary line."
    assert "\n" not in paragraphs[1] and "editor, not of the terminal" in paragraphs[1]
    assert paragraphs[2].splitlines() == [
        "Examples:",
        "  backwatch wrap nightly -- restic backup /srv",
        "  backwatch push --job x",
        'source "$(backwatch shell-lib --path)"',
        "backwatch shell-lib > lib.sh",
    ]
