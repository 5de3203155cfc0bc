"""a partial index on open runs: a ping's pairing with its open run costs the same at a
million runs of the job as at ten

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN_RUN = "status IN ('queued', 'running')"  # (as store/tables.py says it, at this revision)


def upgrade() -> None:
    op.create_index(
        "ix_runs_open",
        "runs",
        ["job", "started_at"],
        sqlite_where=sa.text(OPEN_RUN),
        postgresql_where=sa.text(OPEN_RUN),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_open", table_name="runs")
