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


UNSEEN_STATUSES = frozenset({408, 425, 429, 502, 503})
"""Answers that say the provider did not take this request in, and nothing about any other."""


def judge_money_answer(
    outcome: Outcome,
    status: int | None,
    error_type: str | None,
    *,
    retrieving: bool,
    has_goods: bool,
    reached: bool = True,
) -> Outcome:
    """What an answer to a request that moves money (or to a retry of one, `retrieving`) says
    about *our* upstream id; only a verdict the provider gave on that id is final.

    - A success without what was bought (no tokens, no voucher code) may have sold: unknown.
    - `DUPLICATE_RECORD` or a 404 answer our own id with "I have (or lost) it", not "no".
    - On a retry, silence, a refused connection or a 503 says nothing about the original
      request, which may well have been sold: still unknown."""
    if outcome is Outcome.SUCCESSFUL:
        return outcome if has_goods else Outcome.UNKNOWN
    if outcome is Outcome.UNKNOWN:
        return outcome
    if error_type == "DUPLICATE_RECORD" or status == 404:
        return Outcome.UNKNOWN
    if retrieving and (not reached or status is None or status in UNSEEN_STATUSES):
        return Outcome.UNKNOWN
    return outcome
