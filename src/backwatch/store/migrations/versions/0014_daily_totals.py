"""daily_totals: the daily rollups summed over every job, a row a day, so that the
summary's totals read a row per day instead of every job's rollups (issue 18)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COUNTS = ("runs", "success", "warning", "failed", "other", "duration_count", "size_count")
_SUMS = ("duration_sum", "size_sum")


def upgrade() -> None:
    op.create_table(
        "daily_totals",
        sa.Column("day", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS[:5]),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.Column("size_sum", sa.Float(), nullable=False),
        sa.Column("size_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_totals")),
    )
    names = ", ".join((*_COUNTS, *_SUMS))
    sums = ", ".join(f"SUM({name})" for name in (*_COUNTS, *_SUMS))
    op.execute(
        f"INSERT INTO daily_totals (day, {names}) "
        f"SELECT day, {sums} FROM daily_rollups GROUP BY day"
    )


def downgrade() -> None:
    op.drop_table("daily_totals")
