"""an index on an unscheduled job's next due time (latest start + learned interval), so
that a fleet's counts and the time check read only the jobs past it, not every job with a
learned interval (issue 18)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_jobs_learned", table_name="jobs")
    op.create_index(
        "ix_jobs_learned_due", "jobs", [sa.text("(last_started_at + learned_interval_s)")]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_learned_due", table_name="jobs")
    op.create_index("ix_jobs_learned", "jobs", ["learned_interval_s"])
