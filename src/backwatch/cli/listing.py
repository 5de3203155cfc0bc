"""``backwatch list``: the jobs a page at a time, filtered, as ``GET /api/v1/jobs`` pages.

Both targets answer a page (cli/target.py on a server, cli/local.py on the database), so a
fleet of 100,000 jobs is never loaded at once: ``--all`` follows the cursor page by page.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, Any

import typer

from backwatch.cli.common import console, print_json
from backwatch.cli.job_pages import ALL_PAGE, job_page, pages, write_json_pages
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.masking import display_url

#: the API's default page
DEFAULT_LIMIT = 100


def register(app: typer.Typer) -> None:
    app.command("list")(list_jobs)


@targeted()
def list_jobs(
    health: Annotated[
        list[str] | None,
        typer.Option(
            "--health",
            metavar="STATE[,STATE]",
            help="Only jobs in these states, e.g. failing,missed (repeatable): failing, "
            "missed, stuck, unknown, late, running, ok, new, paused.",
        ),
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only jobs with this tag.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Only jobs of this host.")] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", "-q", help="Only jobs whose id starts so.")
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="id, last_run (latest first) or health (worst first).")
    ] = "id",
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="Jobs per page, 1 to 1000 (default 100)."),
    ] = None,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="The next page, as the last page printed it.")
    ] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every matching job, page after page (for scripts)."),
    ] = False,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Jobs, one line each: a page of 100 by default, filtered and sorted as the API does.

    A table ends with how many more jobs match and the command for the next page. `--json`
    prints the page as one JSON array (the next page's command on stderr); with `--all`,
    one JSON array of every matching job, written page by page.
    """
    query: dict[str, Any] = {
        "health": tuple(health or ()),
        "tag": tag,
        "host": host,
        "q": prefix,
        "sort": sort,
        "limit": limit if limit is not None else (ALL_PAGE if every else DEFAULT_LIMIT),
        "cursor": cursor,
    }
    tgt = open_target(where, read_only=True)
    try:
        if every:
            _all_pages(tgt, query, json_out)
            return
        page = job_page(tgt, query, counts=not json_out)
    finally:
        tgt.close()
    items = page["items"]
    follow = _next_command(query, page.get("next_cursor"), where, json_out)
    if json_out:
        print_json(items)
        if follow:
            sys.stderr.write(f"more jobs match; the next page: {follow}\n")
        return
    from backwatch.cli.views import _jobs_table  # rich: only for a table

    out = console()
    out.print(_jobs_table(items))
    if not items and (query["health"] or tag or host or prefix or cursor):
        out.print("no jobs match", markup=False, highlight=False)
    if follow:
        out.print(_more_text(page, query, len(items)), markup=False, highlight=False)
        out.print(f"next page: {follow}", markup=False, highlight=False, soft_wrap=True)


def _all_pages(tgt: Any, query: dict[str, Any], json_out: bool) -> None:
    """Every page in turn: a table per page, or one JSON array written as pages come."""
    if json_out:
        write_json_pages(tgt, query)
        sys.stdout.write("\n")
        return
    from backwatch.cli.views import _jobs_table  # rich: only for a table

    for page in pages(tgt, query):
        if page["items"]:
            console().print(_jobs_table(page["items"]))


def _more_text(page: dict[str, Any], query: dict[str, Any], shown: int) -> str:
    """'… 4,900 more match' on a first page; on a later one, how many match in all."""
    counts = page.get("counts")
    if not counts:
        return "… more jobs match"
    wanted = query["health"] and {p.strip() for h in query["health"] for p in h.split(",")}
    total = sum(n for h, n in counts.items() if not wanted or h in wanted)
    if query["cursor"]:
        return f"… more jobs match ({total:,} in all)"
    return f"… {total - shown:,} more match ({total:,} in all)"


def _next_command(
    query: dict[str, Any], cursor: str | None, where: Where, json_out: bool = False
) -> str | None:
    """The command line of the next page: the same filters and target, the new cursor."""
    if not cursor:
        return None
    words = ["backwatch", "list", *(["--json"] if json_out else [])]
    given = [
        ("--health", ",".join(query["health"]) or None),
        ("--tag", query["tag"]),
        ("--host", query["host"]),
        ("--prefix", query["q"]),
        ("--sort", None if query["sort"] == "id" else query["sort"]),
        ("--limit", None if query["limit"] == DEFAULT_LIMIT else str(query["limit"])),
    ]
    # the target as given on the command line (an environment variable is there again)
    if where.url and where.url != os.environ.get("BACKWATCH_URL"):
        given.append(("--url", display_url(where.url)))
    if where.config and where.config != os.environ.get("BACKWATCH_CONFIG"):
        given.append(("--config", where.config))
    if where.data_dir and where.data_dir != os.environ.get("BACKWATCH_DATA_DIR"):
        given.append(("--data-dir", where.data_dir))
    given += [("--db", where.db), ("--cursor", cursor)]
    for option, value in given:
        if value:
            words += [option, shlex.quote(value)]
    return " ".join(words)
