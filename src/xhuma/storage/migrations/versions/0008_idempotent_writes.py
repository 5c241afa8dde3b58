"""idempotent writes: commit markers for in-doubt commits, one queue entry per message, one open
exception per transaction and reason

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")


def upgrade() -> None:
    op.create_table(
        "commit_markers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commit_markers")),
    )
    with op.batch_alter_table("saf_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_saf_entries_tx_id")
        batch_op.create_unique_constraint(batch_op.f("uq_saf_entries_tx_id_operation"), ["tx_id", "operation"])
    op.create_index(
        "uq_open_exception",
        "reconciliation_exceptions",
        ["tx_id", "reason"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_open_exception", table_name="reconciliation_exceptions")
    with op.batch_alter_table("saf_entries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_saf_entries_tx_id_operation"), type_="unique")
        batch_op.create_index("ix_saf_entries_tx_id", ["tx_id"], unique=False)
    op.drop_table("commit_markers")
