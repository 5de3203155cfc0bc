"""when a job's backup was last proven: the end of its latest passed drill or check, and an
index to find a job's latest drill

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_verified_at", sa.Float(), nullable=True))
    op.create_index("ix_runs_job_kind_started", "runs", ["job", "kind", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_job_kind_started", table_name="runs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("last_verified_at")
