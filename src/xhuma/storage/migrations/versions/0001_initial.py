"""journal, credentials and store-and-forward

Revision ID: 0001
Revises:
Create Date: 2026-11-22 15:02:49.324587
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_api_clients")),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("retail_id", sa.String(length=36), nullable=False),
        sa.Column("id_space", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("meter_id", sa.String(length=20), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("error_type", sa.String(length=40), nullable=True),
        sa.Column("retail_status", sa.Integer(), nullable=True),
        sa.Column("retail_response", sa.Text(), nullable=True),
        sa.Column("upstream_request", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["transactions.id"], name=op.f("fk_transactions_parent_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "client_id", "id_space", "retail_id", name=op.f("uq_transactions_client_id_id_space_retail_id")
        ),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transactions_created_us"), ["created_us"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transactions_meter_id_created_us"), ["meter_id", "created_us"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transactions_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transactions_state_created_us"), ["state", "created_us"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tx_id", sa.String(length=36), nullable=False),
        sa.Column("leg", sa.String(length=8), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("elapsed_us", sa.BigInteger(), nullable=True),
        sa.Column("peer", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["tx_id"], ["transactions.id"], name=op.f("fk_messages_tx_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_tx_id_id"), ["tx_id", "id"], unique=False)

    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tx_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["transactions.id"], name=op.f("fk_reconciliation_exceptions_tx_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_exceptions")),
    )
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_exceptions_state_created_us"), ["state", "created_us"], unique=False
        )

    op.create_table(
        "saf_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("tx_id", sa.String(length=36), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_us", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tx_id"], ["transactions.id"], name=op.f("fk_saf_entries_tx_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saf_entries")),
    )
    with op.batch_alter_table("saf_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saf_entries_queue_state_id"), ["queue", "state", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_saf_entries_state_next_attempt_us"), ["state", "next_attempt_us"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_saf_entries_tx_id"), ["tx_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("saf_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saf_entries_tx_id"))
        batch_op.drop_index(batch_op.f("ix_saf_entries_state_next_attempt_us"))
        batch_op.drop_index(batch_op.f("ix_saf_entries_queue_state_id"))

    op.drop_table("saf_entries")
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_exceptions_state_created_us"))

    op.drop_table("reconciliation_exceptions")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_tx_id_id"))

    op.drop_table("messages")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_state_created_us"))
        batch_op.drop_index(batch_op.f("ix_transactions_parent_id"))
        batch_op.drop_index(batch_op.f("ix_transactions_meter_id_created_us"))
        batch_op.drop_index(batch_op.f("ix_transactions_created_us"))

    op.drop_table("transactions")
    op.drop_table("api_clients")
