"""The schema, declared once. Migrations in ``migrations/versions`` create exactly this.

Times are float epoch seconds (UTC): compact, index-friendly and identical on SQLite and
PostgreSQL. Logs live in their own table so the runs table stays small (≤ 1 KB a run).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    # a display name in any script (the id is a slug): migration 0012
    Column("name", String(120), nullable=False, default="", server_default=""),
    Column("description", Text, nullable=False, default=""),
    Column("host", String(255)),
    Column("backup_path", Text),
    Column("tool", String(64)),
    Column("schedule", String(128)),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("grace_s", Float, nullable=False, default=3600.0),
    Column("timeout_s", Float),
    Column("tags", JSON, nullable=False, default=list),
    Column("paused", Boolean, nullable=False, default=False),
    Column("ping_key", String(64), nullable=False, unique=True),
    Column("origin", String(16), nullable=False, default="auto"),  # auto | config | api
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Denormalised view of the latest run, refreshed by each write batch, so that listing
    # 500 jobs never touches the runs table.
    Column("last_run_id", String(64)),
    Column("last_started_at", Float),
    Column("last_finished_at", Float),
    Column("last_status", String(16)),
    Column("last_duration_s", Float),
    Column("last_size_bytes", BigInteger),
    Column("last_success_at", Float),
    # the end of the latest passed drill or check (or backup whose check step passed)
    Column("last_verified_at", Float),
    Column("median_duration_s", Float),
    # median interval between starts, for unscheduled jobs with ≥ 5 runs (alert evaluator)
    Column("learned_interval_s", Float),
    Column("runs_total", Integer, nullable=False, default=0),
    # A scheduled job's next due time, kept by each write (services/due.py) so that health
    # can be counted and filtered in SQL (store/job_list.py): a cron walk is not SQL. It
    # holds for the job's start time (or creation) ``due_from`` and ``due_key`` (schedule
    # and time zone); a row whose inputs moved since is stale and is refreshed.
    Column("due_at", Float),
    Column("due_from", Float),
    Column("due_key", String(200)),
    Index("ix_jobs_host", "host", "id"),
    Index("ix_jobs_last_started", "last_started_at", "id"),
    Index("ix_jobs_last_status", "last_status", "id"),
    Index("ix_jobs_due", "due_at"),
    Index("ix_jobs_paused", "paused"),
    # the job as a Healthchecks check: its id in /api/v3/checks/<uuid>, and a ping URL
    # (/ping/<uuid>) as secret as ping_key (services/hc_api.py)
    Column("check_uuid", String(36)),
    Index("ix_jobs_check_uuid", "check_uuid", unique=True),
)

#: an unscheduled job's next due time (its latest start plus its learned interval; NULL
#: without one), indexed as an expression (migration 0013) so that the jobs past it are found
#: without reading the others; queries must write it as this same expression
LEARNED_DUE = jobs.c.last_started_at + jobs.c.learned_interval_s
Index("ix_jobs_learned_due", LEARNED_DUE)

#: a run not finished yet, as SQL: the predicate of the ``ix_runs_open`` partial index, written
#: the same way in the queries that look for open runs so that both databases use the index
OPEN_RUN = "status IN ('queued', 'running')"
#: a run that did not succeed (``domain.rules.NOT_SUCCEEDED``), as SQL: the predicate of the
#: ``ix_runs_not_succeeded`` partial index, by which the jobs whose 7-day error rate moves
#: with the clock are found without reading every run of the window
NOT_SUCCEEDED_RUN = "status IN ('failed', 'timed_out', 'unknown')"

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("job", String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("host", String(255)),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Column("exit_code", Integer),
    Column("size_bytes", BigInteger),
    Column("files", BigInteger),
    Column("files_new", BigInteger),
    Column("files_changed", BigInteger),
    Column("bytes_added", BigInteger),
    Column("message", Text),
    Column("tool", String(64)),
    Column("stats", JSON),
    Column("source", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("backup_id", String(128)),
    Column("updated_at", Float, nullable=False),
    # backup | check | drill: only backups make a job's "last run" and "last success"
    Column("kind", String(16), nullable=False, server_default="backup"),
    Index("ix_runs_job_started", "job", "started_at"),
    Index("ix_runs_job_kind_started", "job", "kind", "started_at"),  # a job's latest drill
    Index("ix_runs_started", "started_at"),
    Index("ix_runs_job_backup_id", "job", "backup_id", unique=True),
    # a ping's open run: as cheap at a million runs of the job as at ten
    Index(
        "ix_runs_open",
        "job",
        "started_at",
        sqlite_where=text(OPEN_RUN),
        postgresql_where=text(OPEN_RUN),
    ),
    Index(
        "ix_runs_not_succeeded",
        "started_at",
        "job",
        sqlite_where=text(NOT_SUCCEEDED_RUN),
        postgresql_where=text(NOT_SUCCEEDED_RUN),
    ),
)

run_logs = Table(
    "run_logs",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("log", Text, nullable=False),
)

phases = Table(
    "phases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Index("ix_phases_run", "run_id", "seq"),
)

run_files = Table(
    "run_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size_bytes", BigInteger),
    Column("status", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_run_files_run", "run_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("entity", String(16), nullable=False),  # run | job | token | alert | system
    Column("entity_id", String(128)),
    Column("job", String(64)),
    Column("from_state", String(32)),
    Column("to_state", String(32)),
    Column("trigger", String(32)),
    Column("actor", String(128)),
    Column("detail", JSON),
    Index("ix_events_at", "at"),
    Index("ix_events_entity", "entity_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    # glob patterns an ingest token is limited to (services/tokens.py); NULL: any
    Column("job_patterns", JSON),
    Column("host_patterns", JSON),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)


def _day_figures() -> list[Column[Any]]:
    """A day's runs summed: of one job (``daily_rollups``) or of the fleet (``daily_totals``)."""
    return [
        Column("runs", Integer, nullable=False, default=0),
        Column("success", Integer, nullable=False, default=0),
        Column("warning", Integer, nullable=False, default=0),
        Column("failed", Integer, nullable=False, default=0),
        Column("other", Integer, nullable=False, default=0),
        Column("duration_sum", Float, nullable=False, default=0.0),
        Column("duration_count", Integer, nullable=False, default=0),
        Column("size_sum", Float, nullable=False, default=0.0),
        Column("size_count", Integer, nullable=False, default=0),
    ]


daily_rollups = Table(
    "daily_rollups",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),  # days since the epoch (UTC)
    *_day_figures(),
    Index("ix_daily_rollups_day", "day"),
)

# The same figures for the whole fleet, a row a day (migration 0014), kept with the rollups
# in the same transactions (services/unit.py ``add_to_totals``): the summary's totals over
# 30 days read 30 rows, not every job's rollups (3 M rows at 100,000 jobs).
daily_totals = Table(
    "daily_totals",
    metadata,
    Column("day", Integer, primary_key=True),
    *_day_figures(),
)

meta_kv = Table(
    "meta_kv",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

# Who holds a run lock (services/locks.py), for locks held in PostgreSQL (advisory locks):
# the lock ends with its holder's session, the note stays, so whoever takes the lock next
# learns that its holder died mid-run, wherever that was (the lock files' notes are seen only
# on their own host and data directory).
lock_holders = Table(
    "lock_holders",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of the name: names can be long
    Column("name", Text, nullable=False),
    Column("job", String(64)),
    Column("run_id", String(64)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("since", Float),
    Column("deadline", Float),  # when its runner would have killed the run (its timeout)
)

# --- alerts and notifications (issue 4) -----------------------------------------------------

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(160), nullable=False),  # rule:job — one open alert each
    Column("rule", String(32), nullable=False),
    Column("job", String(64), nullable=False),
    Column("run_id", String(64)),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("message", Text, nullable=False),
    Column("detail", JSON),
    Column("opened_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("acknowledged_at", Float),
    Column("acknowledged_by", String(128)),
    Column("resolved_at", Float),
    Column("resolved_by", String(128)),
    Column("last_notified_at", Float),
    Column("suppressed_by", String(64)),  # parent job whose failure suppresses this one
    # (state, severity, id): the most urgent alerts, newest first, without sorting them all
    Index("ix_alerts_state_severity", "state", "severity", "id"),
    Index("ix_alerts_job", "job"),
    Index(
        "uq_alerts_open_fingerprint",
        "fingerprint",
        unique=True,
        sqlite_where=text("state != 'resolved'"),
        postgresql_where=text("state != 'resolved'"),
    ),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer),  # None for test messages
    Column("channel", String(32), nullable=False),  # channels.id
    Column("event", String(16), nullable=False),  # open | resolve | renotify | test
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", Float),
    Column("sent_at", Float),
    Column("last_error", Text),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(32), primary_key=True),  # hash of the Apprise URL, never the URL
    Column("masked_url", Text, nullable=False),
    Column("last_error", Text),
    Column("last_error_at", Float),
    Column("last_success_at", Float),
    Column("failing", Boolean, nullable=False, default=False),
)

disk_samples = Table(
    "disk_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("used_bytes", BigInteger, nullable=False),
    Column("total_bytes", BigInteger, nullable=False),
    Index("ix_disk_samples_path_at", "path", "at"),
)

job_alert_state = Table(
    "job_alert_state",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("snoozed_until", Float),
    Column("snoozed_by", String(128)),
)
