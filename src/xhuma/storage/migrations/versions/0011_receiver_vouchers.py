"""vouchers provisioned without a product: product codes may be null

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vouchers") as batch:
        batch.alter_column("product_code", existing_type=sa.String(length=40), nullable=True)
        batch.alter_column("provider_product_code", existing_type=sa.String(length=40), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("vouchers") as batch:
        batch.alter_column("provider_product_code", existing_type=sa.String(length=40), nullable=False)
        batch.alter_column("product_code", existing_type=sa.String(length=40), nullable=False)
