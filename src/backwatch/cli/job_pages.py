"""Jobs a page at a time for the CLI: one page from a target (a server or the database),
every page following the cursor, and every job as one JSON array written page by page, so
that a fleet of 100,000 jobs is never in memory at once (``list``, ``status --json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from backwatch.cli.common import fail
from backwatch.errors import BackwatchError

#: ``--all`` and ``status --json`` read the API's largest page at a time
ALL_PAGE = 1000
#: the API's query parameters → the options that give them (for messages)
OPTION_OF = {
    "limit": "--limit",
    "cursor": "--cursor",
    "health": "--health",
    "tag": "--tag",
    "host": "--host",
    "q": "--prefix",
    "sort": "--sort",
}


def job_page(tgt: Any, query: dict[str, Any], *, counts: bool = False) -> dict[str, Any]:
    """One page from the target; a value the API refuses names the option that gave it."""
    try:
        page: dict[str, Any] = tgt.job_page(counts=counts, **query)
        return page
    except BackwatchError as exc:
        detail = (exc.details or [{}])[0]
        option = OPTION_OF.get(str(detail.get("field")))
        if option is None:
            raise
        problem = detail.get("problem") or exc.message
        if option == "--cursor":  # the API's words speak of "this API"
            problem = (
                f"{query['cursor']!r} is not a next-page cursor for --sort {query['sort']}; "
                "give the --cursor the previous page printed, with the same --sort"
            )
        raise fail(f"{option}: {problem}", 2) from None


def write_json_pages(tgt: Any, query: dict[str, Any]) -> None:
    """Every job ``query`` matches as one JSON array on stdout, written page by page: a
    fleet's jobs are never all in memory (``status --json`` and ``list --all --json``)."""
    first = True
    sys.stdout.write("[")
    for page in pages(tgt, query):
        for item in page["items"]:
            sys.stdout.write(("\n" if first else ",\n") + json_line(item))
            first = False
        sys.stdout.flush()
    sys.stdout.write("\n]")


def pages(tgt: Any, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pages of ``query``, following the cursor."""
    while True:
        page = job_page(tgt, query)
        yield page
        if not page.get("next_cursor"):
            return
        query["cursor"] = page["next_cursor"]


def json_line(item: Any) -> str:
    text = json.dumps(item, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate stored before text was cleaned
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
