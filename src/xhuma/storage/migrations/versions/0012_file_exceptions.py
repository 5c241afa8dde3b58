"""file exceptions: a reconciliation exception may concern an EFT file instead of a journal
transaction (a gap or a repeat in a sender's transmission numbers), one open per file and reason

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")
SUBJECT = "tx_id IS NOT NULL OR eft_file_id IS NOT NULL"


def upgrade() -> None:
    # The partial index is dropped around the batch (SQLite copies the table) and made again.
    op.drop_index("uq_open_exception", table_name="reconciliation_exceptions")
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eft_file_id", sa.BigInteger(), nullable=True))
        batch_op.alter_column("tx_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_reconciliation_exceptions_eft_file_id_eft_files"), "eft_files", ["eft_file_id"], ["id"]
        )
        batch_op.create_check_constraint("ck_reconciliation_exceptions_subject", sa.text(SUBJECT))
    for name, column in (("uq_open_exception", "tx_id"), ("uq_open_file_exception", "eft_file_id")):
        op.create_index(
            name,
            "reconciliation_exceptions",
            [column, "reason"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )


def downgrade() -> None:
    op.execute("DELETE FROM reconciliation_exceptions WHERE tx_id IS NULL")
    op.drop_index("uq_open_file_exception", table_name="reconciliation_exceptions")
    op.drop_index("uq_open_exception", table_name="reconciliation_exceptions")
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.drop_constraint("ck_reconciliation_exceptions_subject", type_="check")
        batch_op.drop_constraint(batch_op.f("fk_reconciliation_exceptions_eft_file_id_eft_files"), type_="foreignkey")
        batch_op.alter_column("tx_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column("eft_file_id")
    op.create_index(
        "uq_open_exception",
        "reconciliation_exceptions",
        ["tx_id", "reason"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
