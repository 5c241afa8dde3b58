"""Log lines for machines: `xhuma serve --log-format json` writes one JSON object per line to
stderr, each carrying the correlation id of the transaction it was written for (our own
transaction id, as `xhuma tx show` finds it), so a log search joins a transaction's lines.

The correlation id is a context variable: the engine sets it on the event loop when it takes up
a transaction, and every line logged later in that request's task carries it."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

CORRELATION_ID: ContextVar[str | None] = ContextVar("xhuma_correlation_id", default=None)
FORMATS = ("text", "json")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    """time, level, logger, message, correlation_id, the record's extra fields, and the
    exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": CORRELATION_ID.get(),
        }
        line |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(log_format: str) -> None:
    """`text` leaves Python's default (warnings and errors to stderr as they come); `json` sends
    xhuma's INFO lines and above to stderr as JSON lines (one per concluded request, among them)."""
    if log_format != "json":
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger("xhuma")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
