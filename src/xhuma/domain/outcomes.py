"""How an answer from a counterparty is classed: it decides whether money may have moved."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    UNKNOWN = "unknown"


def classify_status(status: int | None) -> Outcome:
    """PPU protocol basics: 2xx succeeded; 500, 504 or no answer is unknown; all else failed.

    `None` stands for "sent, but no answer" (timeout or dropped connection)."""
    if status is None or status in (500, 504):
        return Outcome.UNKNOWN
    if 200 <= status < 300:
        return Outcome.SUCCESSFUL
    return Outcome.FAILED
