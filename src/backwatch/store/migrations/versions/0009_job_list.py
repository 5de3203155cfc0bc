"""jobs as a paged collection: a scheduled job's next due time kept on its row (health is
counted and filtered in SQL), and indexes for the list's filters and sorts

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # due_at stays NULL here: the server fills it on start (services/due.py), with the
    # schedule code of the version that reads it
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("due_from", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("due_key", sa.String(length=200), nullable=True))
    op.create_index("ix_jobs_host", "jobs", ["host", "id"])
    op.create_index("ix_jobs_last_started", "jobs", ["last_started_at", "id"])
    op.create_index("ix_jobs_last_status", "jobs", ["last_status", "id"])
    op.create_index("ix_jobs_due", "jobs", ["due_at"])


def downgrade() -> None:
    for name in ("ix_jobs_due", "ix_jobs_last_status", "ix_jobs_last_started", "ix_jobs_host"):
        op.drop_index(name, table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("due_key")
        batch_op.drop_column("due_from")
        batch_op.drop_column("due_at")
