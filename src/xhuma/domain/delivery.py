"""Store-and-forward rules: what an answer means for a queued message, and when to try again.

Pure functions, so the policy per interface is readable in one place and testable alone."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from xhuma.domain.outcomes import UNSEEN_STATUSES, Outcome


class Verdict(StrEnum):
    DELIVERED = "delivered"
    """A final answer: the destination has the message (or needs nothing more)."""
    REPEAT = "repeat"
    """No final answer yet: try again after a backoff."""
    STOP = "stop"
    """A final refusal that needs a person: the entry becomes an exception."""


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    status: int | None
    error_type: str | None
    reached: bool = True
    """False when the connection was never made."""


def advice_verdict(answer: Answer, *, reversal: bool) -> Verdict:
    """Confirmations and reversals (PPU and SUV alike): repeat until 2xx or a final refusal
    (§1.4, §9.2).

    503 is "failed" in the interface's table, but an advice must still arrive, so it is
    repeated. A duplicate means the provider already has the advice. A reversal the provider
    cannot match is repeated, not dropped: the purchase it reverses may still be on its way (or
    be re-sent by our own follow-up retry), and a reversal lost to that race would leave a
    purchase standing that the retailer undid; past the queue's maximum age a person decides."""
    if answer.outcome is Outcome.SUCCESSFUL:
        return Verdict.DELIVERED
    if answer.outcome is Outcome.UNKNOWN or not answer.reached or answer.status in UNSEEN_STATUSES:
        return Verdict.REPEAT
    if answer.error_type == "DUPLICATE_RECORD":
        return Verdict.DELIVERED
    if answer.status == 404 and reversal:
        return Verdict.REPEAT
    return Verdict.STOP


def retry_verdict(answer: Answer) -> Verdict:
    """A follow-up retry of a purchase (or voucher provision) whose outcome was unknown: any final answer, approval or
    decline, is what we were after; only an unknown one is asked again."""
    if answer.outcome is Outcome.UNKNOWN or not answer.reached or answer.status in UNSEEN_STATUSES:
        return Verdict.REPEAT
    return Verdict.DELIVERED


def backoff_seconds(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: spreads retries of many entries after an outage."""
    ceiling = min(cap, base * (2 ** min(attempts, 30)))
    return rng.uniform(base / 2, max(base / 2, ceiling))
