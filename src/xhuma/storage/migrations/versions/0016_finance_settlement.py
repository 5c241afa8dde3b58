"""finance maker-checker approvals, settlements (units, records, fee lines) and held results

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
HELD = sa.text("status NOT IN ('ERROR', 'ROLLBACK')")
HELD_BEFORE = sa.text("status <> 'ERROR'")
FILE_INDEXES = (("uq_finance_file_hash", "content_hash"), ("uq_finance_file_name", "name"))


def _file_indexes(where: sa.TextClause) -> None:
    """A file's name and content are taken once per process, except by a refused (or, from
    0016, a rolled-back) file."""
    for name, column in FILE_INDEXES:
        op.drop_index(name, table_name="finance_files")
        op.create_index(
            name, "finance_files", ["process", column], unique=True, sqlite_where=where, postgresql_where=where
        )


DRAFT = sa.text("status = 'DRAFT'")


def upgrade() -> None:
    _file_indexes(HELD)
    with op.batch_alter_table("finance_results") as batch:
        batch.add_column(sa.Column("approval_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("settlement_id", sa.String(length=36), nullable=True))
    op.create_table(
        "finance_approvals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("maker", sa.String(length=100), nullable=False),
        sa.Column("maker_note", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("checker", sa.String(length=100), nullable=True),
        sa.Column("checker_note", sa.Text(), nullable=True),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_approvals")),
    )
    op.create_index(op.f("ix_finance_approvals_status_created_us"), "finance_approvals", ["status", "created_us"])
    op.create_index(
        "uq_finance_approval_pending",
        "finance_approvals",
        ["kind", "target"],
        unique=True,
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_table(
        "finance_settlements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("counterparty", sa.String(length=80), nullable=False),
        sa.Column("from_day", sa.String(length=10), nullable=False),
        sa.Column("to_day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("approved", sa.BigInteger(), nullable=False),
        sa.Column("reversed", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("principal_payer", sa.String(length=12), nullable=False),
        sa.Column("fees_to_us", sa.BigInteger(), nullable=False),
        sa.Column("fees_to_them", sa.BigInteger(), nullable=False),
        sa.Column("net_to_counterparty", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("approval_id", sa.String(length=36), nullable=True),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_settlements")),
    )
    op.create_index(
        op.f("ix_finance_settlements_counterparty_status"), "finance_settlements", ["counterparty", "status"]
    )
    op.create_index(
        "uq_finance_settlement_draft",
        "finance_settlements",
        ["counterparty"],
        unique=True,
        sqlite_where=DRAFT,
        postgresql_where=DRAFT,
    )
    op.create_table(
        "finance_settlement_units",
        sa.Column("settlement_id", sa.String(length=36), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=10), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["finance_settlements.id"],
            name=op.f("fk_finance_settlement_units_settlement_id_finance_settlements"),
        ),
        sa.PrimaryKeyConstraint("settlement_id", "unit", name=op.f("pk_finance_settlement_units")),
    )
    op.create_table(
        "finance_settlement_records",
        sa.Column("settlement_id", sa.String(length=36), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("record_id", sa.String(length=48), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["finance_settlements.id"],
            name=op.f("fk_finance_settlement_records_settlement_id_finance_settlements"),
        ),
        sa.PrimaryKeyConstraint(
            "settlement_id", "process", "side", "record_id", name=op.f("pk_finance_settlement_records")
        ),
    )
    op.create_table(
        "finance_settlement_fees",
        sa.Column("settlement_id", sa.String(length=36), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("payer", sa.String(length=12), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["finance_settlements.id"],
            name=op.f("fk_finance_settlement_fees_settlement_id_finance_settlements"),
        ),
        sa.PrimaryKeyConstraint("settlement_id", "rule", "month", name=op.f("pk_finance_settlement_fees")),
    )


def downgrade() -> None:
    op.drop_table("finance_settlement_fees")
    op.drop_table("finance_settlement_records")
    op.drop_table("finance_settlement_units")
    op.drop_index("uq_finance_settlement_draft", table_name="finance_settlements")
    op.drop_table("finance_settlements")
    op.drop_index("uq_finance_approval_pending", table_name="finance_approvals")
    op.drop_table("finance_approvals")
    with op.batch_alter_table("finance_results") as batch:
        batch.drop_column("settlement_id")
        batch.drop_column("approval_id")
    _file_indexes(HELD_BEFORE)
