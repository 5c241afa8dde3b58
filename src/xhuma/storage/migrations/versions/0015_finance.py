"""finance reconciliation: counterparty files, their records, runs and each record's result

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NOT_REFUSED = sa.text("status <> 'ERROR'")


def upgrade() -> None:
    op.create_table(
        "finance_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_files")),
    )
    for name, column in (("uq_finance_file_hash", "content_hash"), ("uq_finance_file_name", "name")):
        op.create_index(
            name,
            "finance_files",
            ["process", column],
            unique=True,
            sqlite_where=NOT_REFUSED,
            postgresql_where=NOT_REFUSED,
        )
    op.create_table(
        "finance_records",
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=True),
        sa.Column("meter", sa.String(length=40), nullable=True),
        sa.Column("voucher", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["finance_files.id"], name=op.f("fk_finance_records_file_id_finance_files")
        ),
        sa.PrimaryKeyConstraint("file_id", "line", name=op.f("pk_finance_records")),
    )
    op.create_index(op.f("ix_finance_records_process_day"), "finance_records", ["process", "day"])
    op.create_table(
        "finance_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("ours", sa.Integer(), nullable=False),
        sa.Column("theirs", sa.Integer(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_runs")),
    )
    op.create_index(op.f("ix_finance_runs_process_day"), "finance_runs", ["process", "day"])
    op.create_table(
        "finance_results",
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("record_id", sa.String(length=48), nullable=False),
        sa.Column("record_day", sa.String(length=10), nullable=False),
        sa.Column("run_day", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=True),
        sa.Column("group_id", sa.String(length=100), nullable=True),
        sa.Column("counterparts", sa.Text(), nullable=True),
        sa.Column("differences", sa.Text(), nullable=True),
        sa.Column("resolution", sa.String(length=120), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("process", "side", "record_id", name=op.f("pk_finance_results")),
    )
    op.create_index(
        op.f("ix_finance_results_process_run_day_status"), "finance_results", ["process", "run_day", "status"]
    )
    op.create_index(
        op.f("ix_finance_results_process_record_day_status"), "finance_results", ["process", "record_day", "status"]
    )


def downgrade() -> None:
    op.drop_table("finance_results")
    op.drop_table("finance_runs")
    op.drop_table("finance_records")
    op.drop_index("uq_finance_file_name", table_name="finance_files")
    op.drop_index("uq_finance_file_hash", table_name="finance_files")
    op.drop_table("finance_files")
