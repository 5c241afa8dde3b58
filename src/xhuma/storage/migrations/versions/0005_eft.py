"""eft: files offered to intake, accepted set keys, the transactions of accepted files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 04:39:00.209849
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eft_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("transmission_key", sa.String(length=40), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("credit_total", sa.BigInteger(), nullable=False),
        sa.Column("debit_total", sa.BigInteger(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eft_files")),
    )
    with op.batch_alter_table("eft_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eft_files_content_hash"), ["content_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_eft_files_transmission_key"), ["transmission_key"], unique=False)

    op.create_table(
        "eft_sets",
        sa.Column("set_key", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["eft_files.id"], name=op.f("fk_eft_sets_file_id_eft_files")),
        sa.PrimaryKeyConstraint("set_key", name=op.f("pk_eft_sets")),
    )
    op.create_table(
        "eft_transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_code", sa.String(length=4), nullable=False),
        sa.Column("sequence_number", sa.Integer(), nullable=False),
        sa.Column("action_date", sa.String(length=10), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("user_branch", sa.Integer(), nullable=False),
        sa.Column("user_account", sa.String(length=11), nullable=False),
        sa.Column("homing_branch", sa.Integer(), nullable=False),
        sa.Column("homing_account", sa.String(length=20), nullable=False),
        sa.Column("account_type", sa.Integer(), nullable=False),
        sa.Column("homing_account_name", sa.String(length=30), nullable=False),
        sa.Column("user_reference", sa.String(length=30), nullable=False),
        sa.Column("entry_class", sa.Integer(), nullable=True),
        sa.Column("original_sequence_number", sa.Integer(), nullable=True),
        sa.Column("sec_reason", sa.Integer(), nullable=True),
        sa.Column("correction_reference", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["eft_files.id"], name=op.f("fk_eft_transactions_file_id_eft_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eft_transactions")),
    )
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eft_transactions_file_id_line"), ["file_id", "line"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_eft_transactions_user_code_action_date_sequence_number"),
            ["user_code", "action_date", "sequence_number"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("eft_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eft_transactions_user_code_action_date_sequence_number"))
        batch_op.drop_index(batch_op.f("ix_eft_transactions_file_id_line"))

    op.drop_table("eft_transactions")
    op.drop_table("eft_sets")
    with op.batch_alter_table("eft_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eft_files_transmission_key"))
        batch_op.drop_index(batch_op.f("ix_eft_files_content_hash"))

    op.drop_table("eft_files")
