"""Persistence: the journal, credentials and queues on SQLite (embedded) or PostgreSQL."""
