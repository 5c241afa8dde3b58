"""rejected messages: every retail message refused before a transaction was opened for it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("interface", sa.String(length=8), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=True),
        sa.Column("retail_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
    )
    op.create_index("ix_rejected_messages_at_us", "rejected_messages", ["at_us"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rejected_messages_at_us", table_name="rejected_messages")
    op.drop_table("rejected_messages")
