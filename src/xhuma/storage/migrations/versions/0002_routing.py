"""routing: contract table, preferences, weights, audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:08:19.665177
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_contracts",
        sa.Column("meter_id", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("municipality", sa.String(length=80), nullable=True),
        sa.Column("learned_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "provider", name=op.f("pk_meter_contracts")),
    )
    op.create_table(
        "routing_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_audit")),
    )
    op.create_table(
        "routing_preferences",
        sa.Column("municipality", sa.String(length=80), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("municipality", "provider", name=op.f("pk_routing_preferences")),
    )
    op.create_table(
        "routing_weights",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_routing_weights")),
    )


def downgrade() -> None:
    op.drop_table("routing_weights")
    op.drop_table("routing_preferences")
    op.drop_table("routing_audit")
    op.drop_table("meter_contracts")
