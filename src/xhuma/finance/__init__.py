"""Finance: reconciling xhuma's journal with each counterparty's records.

A domain core free of HTTP: `processes` (the configured processes, pure), `files` (reading a
counterparty's file, checked whole, pure), `matching` (the rules as set operations in DuckDB,
pure), `store` (files, records, runs and results in the journal database: operations that
run in one transaction each, idempotent by our own ids) and `reports` (the day's summary and
exceptions as CSV and PDF, written to an outbox). `xhuma recon` (cli/recon.py) and `xhuma report`
(cli/reports.py) drive it."""
