"""indexes for the health hints of the job list (store/job_list.py): a paused job, and an
unscheduled job with a learned interval, are found without reading every job

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_learned", "jobs", ["learned_interval_s"])
    op.create_index("ix_jobs_paused", "jobs", ["paused"])


def downgrade() -> None:
    op.drop_index("ix_jobs_paused", table_name="jobs")
    op.drop_index("ix_jobs_learned", table_name="jobs")
