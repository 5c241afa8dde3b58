"""eft corrections: set key, correction date, matched original, failure code and unsuccessful-SEC file

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 05:11:39.784088
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_key", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("original_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("correction_date", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("failure_code", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("secfail_file", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.drop_column("secfail_file")
        batch_op.drop_column("failure_code")
        batch_op.drop_column("correction_date")
        batch_op.drop_column("original_id")
        batch_op.drop_column("set_key")
