"""The SUV v1 operations in one table: it drives the retail routes and the upstream paths.

A provider speaking SUV is called on the same paths the retailers call us on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xhuma.domain.transactions import Kind
from xhuma.domain.vouchers import Event
from xhuma.vouchers import wire

BASE_PATH = "/suv/v1"


@dataclass(frozen=True)
class SuvOperation:
    name: str
    kind: Kind | None
    """The journal's kind for it (None for look-ups, which move nothing)."""
    method: str
    path: str
    request_model: type[Any] | None
    success_status: int
    event: Event | None = None
    """For advices: what it does to the voucher."""
    request_kind: Kind | None = None
    """For advices: the kind of request the advice refers to."""

    @property
    def is_advice(self) -> bool:
        return self.event is not None

    def upstream_path(self, provision_id: str | None = None) -> str:
        return BASE_PATH + self.path.format(provisionId=provision_id)


PROVISION = SuvOperation("provisionVoucher", Kind.VOUCHER_PROVISION, "POST", "/vouchers", wire.ProvisionRequest, 201)
RETRY = SuvOperation(
    "retryProvisionVoucher", Kind.VOUCHER_PROVISION, "POST", "/vouchers/{provisionId}/retry", wire.ProvisionRequest, 201
)
CONFIRM = SuvOperation(
    "confirmVoucher",
    Kind.VOUCHER_CONFIRMATION,
    "POST",
    "/vouchers/confirmations",
    wire.TenderAdvice,
    202,
    Event.CONFIRM_PROVISION,
    Kind.VOUCHER_PROVISION,
)
REVERSE = SuvOperation(
    "reverseVoucher",
    Kind.VOUCHER_REVERSAL,
    "POST",
    "/vouchers/reversals",
    wire.BasicReversal,
    202,
    Event.REVERSE_PROVISION,
    Kind.VOUCHER_PROVISION,
)
LOOKUP = SuvOperation("lookupVoucher", None, "GET", "/vouchers", None, 200)
REDEEM = SuvOperation("redeemVoucher", Kind.REDEMPTION, "POST", "/redemptions", wire.RedemptionRequest, 201)
CONFIRM_REDEEM = SuvOperation(
    "confirmRedeem",
    Kind.REDEMPTION_CONFIRMATION,
    "POST",
    "/redemptions/confirmations",
    wire.BasicAdvice,
    202,
    Event.CONFIRM_REDEEM,
    Kind.REDEMPTION,
)
REVERSE_REDEEM = SuvOperation(
    "reverseRedeem",
    Kind.REDEMPTION_REVERSAL,
    "POST",
    "/redemptions/reversals",
    wire.BasicReversal,
    202,
    Event.REVERSE_REDEEM,
    Kind.REDEMPTION,
)
REFUND = SuvOperation("refundVoucher", Kind.REFUND, "POST", "/refunds", wire.RefundRequest, 201)
CONFIRM_REFUND = SuvOperation(
    "confirmRefund",
    Kind.REFUND_CONFIRMATION,
    "POST",
    "/refunds/confirmations",
    wire.BasicAdvice,
    202,
    Event.CONFIRM_REFUND,
    Kind.REFUND,
)
REVERSE_REFUND = SuvOperation(
    "reverseRefund",
    Kind.REFUND_REVERSAL,
    "POST",
    "/refunds/reversals",
    wire.BasicReversal,
    202,
    Event.REVERSE_REFUND,
    Kind.REFUND,
)
PRODUCTS = SuvOperation("lookupProducts", None, "GET", "/products", None, 200)

ALL = (
    PROVISION,
    RETRY,
    CONFIRM,
    REVERSE,
    LOOKUP,
    REDEEM,
    CONFIRM_REDEEM,
    REVERSE_REDEEM,
    REFUND,
    CONFIRM_REFUND,
    REVERSE_REFUND,
    PRODUCTS,
)
BY_NAME = {op.name: op for op in ALL}

REQUEST_NAME = {Kind.VOUCHER_PROVISION: "provision", Kind.REDEMPTION: "redemption", Kind.REFUND: "refund"}
CAPABILITY_OF = {
    RETRY: "retry",
    CONFIRM: "advice",
    REVERSE: "advice",
    REDEEM: "redemption",
    CONFIRM_REDEEM: "advice",
    REVERSE_REDEEM: "advice",
    REFUND: "refund",
    CONFIRM_REFUND: "advice",
    REVERSE_REFUND: "advice",
}
"""What a provider must support for us to send it the operation."""

EVENT_OF = {REDEEM: Event.REDEEM, REFUND: Event.REFUND}
"""What a redemption or refund does to the voucher (advices carry theirs in the table)."""
