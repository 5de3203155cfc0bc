"""a stable UUID per job: its id as a Healthchecks check (``/api/v3/checks/<uuid>``) and a
ping URL of its own (``/ping/<uuid>``), as Healthchecks clients build them

Revision ID: 0008
Revises: 0007
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_uuid", sa.String(length=36), nullable=True))
    conn = op.get_bind()
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("check_uuid", sa.String))
    for (job_id,) in conn.execute(sa.select(jobs.c.id)).all():
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(check_uuid=str(uuid.uuid4())))
    op.create_index("ix_jobs_check_uuid", "jobs", ["check_uuid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_check_uuid", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("check_uuid")
