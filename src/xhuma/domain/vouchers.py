"""The life of a single-use voucher and the refusals of the SUV interface (reference §6.1, §6.2).

One table of transitions, by which the switch keeps each voucher's state for the channels it
serves. The voucher simulator keeps its own rules, written apart, as a provider would: a mistake
here is then caught by its refusals rather than agreed by both sides."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from xhuma.domain.transactions import IN_FLIGHT, Kind, State


class VoucherState(StrEnum):
    PROVISIONED = "provisioned"
    CONFIRMED_PROVISIONED = "confirmed_provisioned"
    REVERSED = "reversed"
    REDEEMED = "redeemed"
    CONFIRMED_REDEEMED = "confirmed_redeemed"
    REFUNDED = "refunded"


class Event(StrEnum):
    CONFIRM_PROVISION = "confirm_provision"
    REVERSE_PROVISION = "reverse_provision"
    REDEEM = "redeem"
    CONFIRM_REDEEM = "confirm_redeem"
    REVERSE_REDEEM = "reverse_redeem"
    REFUND = "refund"
    CONFIRM_REFUND = "confirm_refund"
    REVERSE_REFUND = "reverse_refund"

    @property
    def is_advice(self) -> bool:
        return self not in (Event.REDEEM, Event.REFUND)

    @property
    def is_reversal(self) -> bool:
        return self in (Event.REVERSE_PROVISION, Event.REVERSE_REDEEM, Event.REVERSE_REFUND)


@dataclass(frozen=True)
class Refusal:
    status: int
    error_type: str
    cites_original: bool
    """Whether the error body's `originalId` names the request the message refers to."""


S = VoucherState
_NOT_REDEEMED = Refusal(400, "VOUCHER_NOT_REDEEMED", False)

TRANSITIONS: dict[Event, dict[VoucherState, VoucherState | Refusal]] = {
    Event.CONFIRM_PROVISION: {
        S.PROVISIONED: S.CONFIRMED_PROVISIONED,
        S.REVERSED: Refusal(400, "VOUCHER_ALREADY_REVERSED", True),
        # A confirmation repeated after later steps changes nothing.
        S.CONFIRMED_PROVISIONED: S.CONFIRMED_PROVISIONED,
        S.REDEEMED: S.REDEEMED,
        S.CONFIRMED_REDEEMED: S.CONFIRMED_REDEEMED,
        S.REFUNDED: S.REFUNDED,
    },
    Event.REVERSE_PROVISION: {
        S.PROVISIONED: S.REVERSED,
        S.REVERSED: S.REVERSED,
        **{s: Refusal(400, "VOUCHER_ALREADY_CONFIRMED", True) for s in S if s not in (S.PROVISIONED, S.REVERSED)},
    },
    Event.REDEEM: {
        S.CONFIRMED_PROVISIONED: S.REDEEMED,
        S.PROVISIONED: Refusal(400, "VOUCHER_NOT_REDEEMABLE", False),
        S.REVERSED: Refusal(400, "VOUCHER_NOT_REDEEMABLE", False),
        S.REDEEMED: Refusal(400, "VOUCHER_ALREADY_REDEEMED", False),
        S.CONFIRMED_REDEEMED: Refusal(400, "VOUCHER_ALREADY_REDEEMED", False),
        S.REFUNDED: Refusal(400, "VOUCHER_ALREADY_REDEEMED", False),
    },
    Event.CONFIRM_REDEEM: {
        S.REDEEMED: S.CONFIRMED_REDEEMED,
        **{s: Refusal(400, "VOUCHER_NOT_REDEEMED", True) for s in S if s is not S.REDEEMED},
    },
    Event.REVERSE_REDEEM: {
        S.REDEEMED: S.CONFIRMED_PROVISIONED,
        S.CONFIRMED_REDEEMED: Refusal(400, "REDEMPTION_ALREADY_CONFIRMED", True),
        S.REFUNDED: Refusal(400, "REDEMPTION_ALREADY_CONFIRMED", True),
        **{s: Refusal(400, "VOUCHER_NOT_REDEEMED", True) for s in (S.PROVISIONED, S.CONFIRMED_PROVISIONED, S.REVERSED)},
    },
    Event.REFUND: {
        S.CONFIRMED_REDEEMED: S.REFUNDED,
        S.REDEEMED: Refusal(400, "REDEMPTION_NOT_CONFIRMED", False),
        S.REFUNDED: Refusal(400, "VOUCHER_ALREADY_REFUNDED", False),
        S.CONFIRMED_PROVISIONED: _NOT_REDEEMED,
        S.PROVISIONED: _NOT_REDEEMED,
        S.REVERSED: _NOT_REDEEMED,
    },
    Event.CONFIRM_REFUND: {
        S.REFUNDED: S.CONFIRMED_PROVISIONED,
        **{s: Refusal(400, "VOUCHER_NOT_REFUNDED", True) for s in S if s is not S.REFUNDED},
    },
    Event.REVERSE_REFUND: {
        S.REFUNDED: S.CONFIRMED_REDEEMED,
        **{s: Refusal(400, "REFUND_ALREADY_CONFIRMED", True) for s in S if s is not S.REFUNDED},
    },
}


def transition(state: VoucherState, event: Event) -> VoucherState | Refusal:
    """The voucher's next state, or why the interface refuses the event in this state."""
    return TRANSITIONS[event][state]


LEFT_BY: dict[Kind, dict[State, VoucherState]] = {
    Kind.VOUCHER_PROVISION: {
        State.APPROVED: S.PROVISIONED,
        State.CONFIRMED: S.CONFIRMED_PROVISIONED,
        State.REVERSED: S.REVERSED,
    },
    Kind.REDEMPTION: {
        State.APPROVED: S.REDEEMED,
        State.CONFIRMED: S.CONFIRMED_REDEEMED,
        State.REVERSED: S.CONFIRMED_PROVISIONED,
    },
    Kind.REFUND: {
        State.APPROVED: S.REFUNDED,
        State.CONFIRMED: S.CONFIRMED_PROVISIONED,
        State.REVERSED: S.CONFIRMED_REDEEMED,
    },
}
"""The voucher's state as each request left it, by the request's own journal state."""


def left_by(kind: Kind, state: State) -> VoucherState | None:
    """The state an advice on a request is judged by: the voucher as that request left it, not
    as later requests moved it (a reversal of a confirmed redemption is refused even when the
    voucher has been redeemed again since). A request in flight counts as approved: its
    voucher is taken for it already. None for a declined request (nothing was done)."""
    return LEFT_BY[kind].get(State.APPROVED if state in IN_FLIGHT else state)


ALREADY_REVERSED = {
    "provision": "VOUCHER_ALREADY_REVERSED",
    "redemption": "REDEMPTION_ALREADY_REVERSED",
    "refund": "REFUND_ALREADY_REVERSED",
}
"""What a request is refused with when its reversal arrived first (and was remembered)."""
