"""a partial index on runs that did not succeed, so that the periodic round finds the jobs
whose 7-day error rate moves with the clock without reading every job's history; and the
alerts by (state, severity, id), so that the most urgent are read without sorting every
open alert (issue 18)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (as store/tables.py says it, at this revision)
NOT_SUCCEEDED_RUN = "status IN ('failed', 'timed_out', 'unknown')"


def upgrade() -> None:
    op.create_index(
        "ix_runs_not_succeeded",
        "runs",
        ["started_at", "job"],
        sqlite_where=sa.text(NOT_SUCCEEDED_RUN),
        postgresql_where=sa.text(NOT_SUCCEEDED_RUN),
    )
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.create_index("ix_alerts_state_severity", "alerts", ["state", "severity", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_state_severity", table_name="alerts")
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.drop_index("ix_runs_not_succeeded", table_name="runs")
