"""mask stored card data: rows journalled before masking was (card numbers, track data, PIN
blocks, CVVs, secrets in message bodies, stored requests and answers, queued entries, refusals
and exceptions) are masked as new rows are (`xhuma.security.masking`)

A data migration: the schema does not change. Rows are read in batches by their key and only
those masking changes are written; running it twice changes nothing the second time (masking
is idempotent). It cannot be undone: the downgrade leaves the rows masked.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from xhuma.security.masking import mask_body, mask_text

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 1000


def _refused_body(text: str) -> str:
    return mask_body(text, scan=True)


COLUMNS: dict[str, dict[str, Callable[[str], str]]] = {
    "messages": {"body": mask_body},
    "transactions": {"upstream_request": mask_body, "retail_response": mask_body},
    "saf_entries": {"body": mask_body, "last_error": mask_text},
    "rejected_messages": {"body": _refused_body, "reason": mask_text},
    "reconciliation_exceptions": {"detail": mask_text},
}
"""Each table's text columns that hold what a message said, with the rule new rows get."""


def upgrade() -> None:
    conn = op.get_bind()
    for name, rules in COLUMNS.items():
        table = sa.table(name, sa.column("id"), *(sa.column(c) for c in rules))
        last = None
        while True:
            query = sa.select(table.c.id, *(table.c[c] for c in rules)).order_by(table.c.id).limit(BATCH)
            if last is not None:
                query = query.where(table.c.id > last)
            rows = conn.execute(query).all()
            if not rows:
                break
            for row in rows:
                changed = {
                    column: shown
                    for column, rule in rules.items()
                    if (value := row._mapping[column]) is not None and (shown := rule(value)) != value
                }
                if changed:
                    conn.execute(sa.update(table).where(table.c.id == row.id).values(**changed))
            last = rows[-1].id


def downgrade() -> None:
    pass  # what was masked stays masked
