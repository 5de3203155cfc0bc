"""``backwatch schedule export JOB``: run a job from systemd or cron instead of the
server's scheduler."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from backwatch.cli.params import LOCAL, targeted
from backwatch.cli.run import _configured
from backwatch.cli.target import DEFAULT_TARGET, Where
from backwatch.errors import InvalidInput
from backwatch.runners.schedule_export import crontab, systemd_units


def register(app: typer.Typer) -> None:
    schedule = typer.Typer(
        name="schedule",
        help="Run jobs from systemd or cron instead of the server's scheduler.",
        no_args_is_help=True,
    )
    schedule.command("export")(export_command)
    app.add_typer(schedule)


@targeted(*LOCAL)
def export_command(
    job: Annotated[str, typer.Argument(help="The id of a job declared in the config file.")],
    systemd: Annotated[bool, typer.Option("--systemd", help="A service and a timer unit.")] = False,
    cron: Annotated[bool, typer.Option("--cron", help="A crontab line.")] = False,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the files into this directory (systemd)."),
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> int:
    """Print (or write) a systemd service + timer, or a crontab line, that runs JOB on its
    schedule with `backwatch run`."""

    if systemd == cron:
        raise InvalidInput("choose one of --systemd or --cron")
    settings = where.settings()
    job_settings = _configured(settings, job)
    command = _command_line(job, settings)
    if cron:
        sys.stdout.write(crontab(job_settings, command))
        return 0
    units = systemd_units(job_settings, command)
    if output:
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (folder / name).write_text(text)
            sys.stdout.write(f"wrote {folder / name}\n")
        sys.stdout.write(
            f"enable with: systemctl daemon-reload && systemctl enable --now "
            f"backwatch-{job}.timer\n"
        )
        return 0
    for name, text in units.items():
        sys.stdout.write(f"# {name}\n{text}\n")
    return 0


def _command_line(job: str, settings: Any) -> list[str]:
    # the console script (on PATH, or beside this interpreter in its venv)
    beside = Path(sys.executable).with_name("backwatch")
    exe = shutil.which("backwatch") or (str(beside) if beside.is_file() else None)
    argv = [str(Path(exe).resolve())] if exe else [sys.executable, "-m", "backwatch"]
    argv += ["run", job]
    if settings.config_path is not None:
        argv += ["--config", str(Path(settings.config_path).resolve())]
    argv += ["--data-dir", str(Path(settings.data_dir).resolve())]
    return argv
