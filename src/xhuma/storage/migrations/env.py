"""Alembic environment: runs on the connection handed in by `xhuma.storage.db.migrate`."""

from alembic import context

from xhuma.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
