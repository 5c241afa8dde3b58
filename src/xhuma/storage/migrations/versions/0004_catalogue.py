"""catalogue: products per client, provider mappings, change log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 04:10:45.427417
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_changes",
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_catalogue_changes")),
    )
    with op.batch_alter_table("catalogue_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_changes_client_id_version"), ["client_id", "version"], unique=False
        )

    op.create_table(
        "catalogue_mappings",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_product_code", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "product_code", "provider", name=op.f("pk_catalogue_mappings")),
    )
    op.create_table(
        "catalogue_products",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("product_type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=250), nullable=True),
        sa.Column("fixed_value", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("min_amount", sa.BigInteger(), nullable=True),
        sa.Column("max_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_from", sa.String(length=10), nullable=True),
        sa.Column("valid_to", sa.String(length=10), nullable=True),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "product_code", name=op.f("pk_catalogue_products")),
    )


def downgrade() -> None:
    op.drop_table("catalogue_products")
    op.drop_table("catalogue_mappings")
    with op.batch_alter_table("catalogue_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_changes_client_id_version"))

    op.drop_table("catalogue_changes")
