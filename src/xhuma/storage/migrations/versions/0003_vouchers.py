"""vouchers: issued vouchers and reversals that came first

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 03:50:30.926600
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voucher_early_reversals",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("request_kind", sa.String(length=32), nullable=False),
        sa.Column("reversal_tx_id", sa.String(length=36), nullable=False),
        sa.Column("reversal_id", sa.String(length=36), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reversal_tx_id"], ["transactions.id"], name=op.f("fk_voucher_early_reversals_reversal_tx_id_transactions")
        ),
        sa.PrimaryKeyConstraint("client_id", "request_id", name=op.f("pk_voucher_early_reversals")),
    )
    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("serial_number", sa.String(length=100), nullable=True),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_product_code", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=True),
        sa.Column("expiry", sa.String(length=40), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["transactions.id"], name=op.f("fk_vouchers_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("client_id", "code", name=op.f("uq_vouchers_client_id_code")),
    )


def downgrade() -> None:
    op.drop_table("vouchers")
    op.drop_table("voucher_early_reversals")
