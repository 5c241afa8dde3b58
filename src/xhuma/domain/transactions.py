"""The life cycle of a switched transaction and the rules that move it.

Kept as pure functions so the invariants (a confirmed purchase is never reversed, a late answer
never undoes an advice) can be checked exhaustively and by property tests."""

from __future__ import annotations

from enum import StrEnum

from xhuma.domain.outcomes import Outcome


class Kind(StrEnum):
    METER_LOOKUP = "meter_lookup"
    PURCHASE = "purchase"
    TRIAL_PURCHASE = "trial_purchase"
    REPRINT = "reprint"
    FAULT_REPORT = "fault_report"
    KEY_CHANGE = "key_change"
    CONFIRMATION = "confirmation"
    REVERSAL = "reversal"
    KEY_CHANGE_CONFIRMATION = "key_change_confirmation"
    VOUCHER_PROVISION = "voucher_provision"
    VOUCHER_CONFIRMATION = "voucher_confirmation"
    VOUCHER_REVERSAL = "voucher_reversal"
    REDEMPTION = "redemption"
    REDEMPTION_CONFIRMATION = "redemption_confirmation"
    REDEMPTION_REVERSAL = "redemption_reversal"
    REFUND = "refund"
    REFUND_CONFIRMATION = "refund_confirmation"
    REFUND_REVERSAL = "refund_reversal"
    EFT_CREDIT = "eft_credit"
    EFT_DEBIT = "eft_debit"
    EFT_RETURN = "eft_return"

    @property
    def is_advice(self) -> bool:
        return self in ADVICE_KINDS

    @property
    def moves_money(self) -> bool:
        return self in MONEY_KINDS


MONEY_KINDS = frozenset(
    {Kind.PURCHASE, Kind.VOUCHER_PROVISION, Kind.REDEMPTION, Kind.REFUND, Kind.EFT_CREDIT, Kind.EFT_DEBIT}
)
"""Requests that move value: one a process left in flight must be recovered, never forgotten."""

ADVICE_KINDS = frozenset(
    {
        Kind.CONFIRMATION,
        Kind.REVERSAL,
        Kind.KEY_CHANGE_CONFIRMATION,
        Kind.VOUCHER_CONFIRMATION,
        Kind.VOUCHER_REVERSAL,
        Kind.REDEMPTION_CONFIRMATION,
        Kind.REDEMPTION_REVERSAL,
        Kind.REFUND_CONFIRMATION,
        Kind.REFUND_REVERSAL,
    }
)


class State(StrEnum):
    RECEIVED = "received"
    SENT_UPSTREAM = "sent_upstream"
    APPROVED = "approved"
    DECLINED = "declined"
    UNKNOWN = "unknown"
    CONFIRMED = "confirmed"
    REVERSED = "reversed"
    ACCEPTED = "accepted"
    """An advice journalled and acknowledged; its delivery belongs to store-and-forward."""


IN_FLIGHT = frozenset({State.RECEIVED, State.SENT_UPSTREAM, State.UNKNOWN})
FINAL = frozenset({State.DECLINED, State.CONFIRMED, State.REVERSED})
TOKEN_KNOWN = frozenset({State.APPROVED, State.CONFIRMED})
"""A purchase whose tokens the journal holds: a reprint of it is answered from the journal."""
REPRINTABLE = TOKEN_KNOWN | {State.SENT_UPSTREAM, State.UNKNOWN}
"""A purchase that sold a token or may have: only its provider can reprint one not yet known.
A declined or reversed purchase (or one never sent) has no token to reprint."""


def after_outcome(state: State, outcome: Outcome) -> State:
    """The state once an upstream answer (to the request or to a retry of it) is known.

    An advice the retailer already sent wins over a late answer: the provider's approval after
    a reversal leaves the purchase reversed (the reversal is what gets delivered upstream).
    An approval is never replaced; a decline is replaced only by a success for the same id
    (the provider did sell it, whatever an earlier answer said, so the goods must be accounted
    for)."""
    if state in (State.CONFIRMED, State.REVERSED, State.APPROVED):
        return state
    if state is State.DECLINED:
        return State.APPROVED if outcome is Outcome.SUCCESSFUL else state
    return {
        Outcome.SUCCESSFUL: State.APPROVED,
        Outcome.FAILED: State.DECLINED,
        Outcome.UNKNOWN: State.UNKNOWN,
    }[outcome]


def after_advice(state: State, advice: Kind) -> State:
    """The state of a purchase once the retailer's advice about it is accepted.

    Advices are must-accept (the retailer already acted), so this never refuses one; it only
    decides what the journal says. The first advice wins: a confirmation after a reversal (or
    the reverse) is recorded but does not flip the outcome."""
    if state in (State.CONFIRMED, State.REVERSED):
        return state
    if advice is Kind.REVERSAL:
        return State.DECLINED if state is State.DECLINED else State.REVERSED
    if advice in (Kind.CONFIRMATION, Kind.KEY_CHANGE_CONFIRMATION) and state is State.APPROVED:
        return State.CONFIRMED
    return state
