"""The reads of the web (API routes and dashboard pages) and of the CLI: runs, one run, the
audit trail, the summary's figures, the overview's sparklines.

The web never imports the store (tests/unit/test_import_graph.py): it reads through here and
through ``services.views`` (jobs and their health), as it writes through the other
services. The queries themselves stay in ``store/queries.py`` and ``store/page_queries.py``;
this module is where the edges find them, with the values that go with them.
"""

from __future__ import annotations

from backwatch.store.page_queries import recent_durations
from backwatch.store.queries import (
    MAX_PAGE,
    get_run,
    list_events,
    list_runs,
    newest_runs,
    phases_for,
    summary,
    totals,
)

__all__ = [
    "EVENT_KINDS",
    "MAX_PAGE",
    "get_run",
    "list_events",
    "list_runs",
    "newest_runs",
    "phases_for",
    "recent_durations",
    "summary",
    "totals",
]

#: the kinds of event in the audit trail (``GET /api/v1/events?kind=``, the events page,
#: ``backwatch audit --filter``)
EVENT_KINDS = (
    "state_change", "trigger", "alert", "ack", "config", "auth", "auto_resolve", "log",
    "restore", "delete",
)  # fmt: skip
