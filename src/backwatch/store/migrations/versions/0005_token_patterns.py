"""token patterns: the jobs and hosts an ingest token may report for

Revision ID: 0005
Revises: 0004

Existing tokens get NULL patterns: they keep reporting for any job.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_patterns", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("host_patterns", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("host_patterns")
        batch_op.drop_column("job_patterns")
