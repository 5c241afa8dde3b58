"""Must-deliver messaging: a durable store-and-forward queue with workers that repeat each
entry until a final answer, on SQLite and PostgreSQL alike."""
