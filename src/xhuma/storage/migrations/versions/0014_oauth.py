"""oauth: token signing keys and revocations

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_keys",
        sa.Column("kid", sa.String(length=40), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("retired_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_oauth_keys")),
    )
    op.create_table(
        "oauth_revocations",
        sa.Column("jti", sa.String(length=140), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("before_us", sa.BigInteger(), nullable=True),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_oauth_revocations")),
    )


def downgrade() -> None:
    op.drop_table("oauth_revocations")
    op.drop_table("oauth_keys")
