"""eft delivery: due time, journal transaction, message id, outcome and unpaid file per transaction

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 05:04:45.812737
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("tx_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("released_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("reason_code", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("reason_text", sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column("reported_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("unpaid_file", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_eft_transactions_state_due_us"), ["state", "due_us"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_eft_transactions_message_id"), ["message_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_eft_transactions_tx_id_transactions"), "transactions", ["tx_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_eft_transactions_tx_id_transactions"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_eft_transactions_message_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_eft_transactions_state_due_us"))
        batch_op.drop_column("unpaid_file")
        batch_op.drop_column("reported_us")
        batch_op.drop_column("reason_text")
        batch_op.drop_column("reason_code")
        batch_op.drop_column("released_us")
        batch_op.drop_column("message_id")
        batch_op.drop_column("tx_id")
        batch_op.drop_column("due_us")
