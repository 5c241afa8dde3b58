"""credential bindings: source networks a credential may be used from, and a certificate subject

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("networks", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cert_subject", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("cert_subject")
        batch.drop_column("networks")
