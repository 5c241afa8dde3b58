"""The PPU v3 operations in one table: it drives the retail routes, the OpenAPI document and
the upstream paths, so the three cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xhuma.domain.transactions import Kind
from xhuma.ppu import wire

BASE_PATH = "/prepaidutility/v3"


@dataclass(frozen=True)
class Operation:
    name: str
    kind: Kind
    path: str
    """Path after the base path; `{id}` is this message's id, `{requestId}` the advised one."""
    request_model: type[Any]
    response_model: type[Any] | None
    success_status: int
    request_type: str
    summary: str

    @property
    def is_advice(self) -> bool:
        return self.kind.is_advice

    def upstream_path(self, message_id: str, request_id: str | None = None) -> str:
        return BASE_PATH + self.path.format(id=message_id, requestId=request_id)


METER_LOOKUP = Operation(
    "createMeterLookup",
    Kind.METER_LOOKUP,
    "/meterLookups/{id}",
    wire.MeterLookupRequest,
    wire.MeterLookupResponse,
    201,
    "METER_LOOKUP_REQUEST",
    "Look up a meter",
)
PURCHASE = Operation(
    "createTokenPurchaseRequest",
    Kind.PURCHASE,
    "/tokenPurchases/{id}",
    wire.PurchaseRequest,
    wire.PurchaseResponse,
    201,
    "TOKEN_PURCHASE_REQUEST",
    "Buy a token",
)
RETRY = Operation(
    "retryPurchaseRequest",
    Kind.PURCHASE,
    "/tokenPurchases/{id}/retry",
    wire.PurchaseRequest,
    wire.PurchaseResponse,
    201,
    "TOKEN_PURCHASE_RETRY_REQUEST",
    "Retry a purchase whose answer was lost; answers the original outcome, never buys twice",
)
CONFIRMATION = Operation(
    "confirmTokenPurchase",
    Kind.CONFIRMATION,
    "/tokenPurchases/{requestId}/confirmations/{id}",
    wire.ConfirmationAdvice,
    wire.ConfirmationAdvice,
    202,
    "CONFIRMATION_ADVICE",
    "Confirm a purchase",
)
REVERSAL = Operation(
    "reverseTokenPurchase",
    Kind.REVERSAL,
    "/tokenPurchases/{requestId}/reversals/{id}",
    wire.ReversalAdvice,
    wire.ReversalAdvice,
    202,
    "REVERSAL_ADVICE",
    "Reverse a purchase",
)
TRIAL = Operation(
    "trialTokenPurchaseRequest",
    Kind.TRIAL_PURCHASE,
    "/tokenPurchases/{id}/trial",
    wire.PurchaseRequest,
    wire.PurchaseResponse,
    200,
    "TOKEN_PURCHASE_TRIAL_REQUEST",
    "Price a purchase without buying",
)
REPRINT = Operation(
    "requestTokenReprint",
    Kind.REPRINT,
    "/tokenReprints/{id}",
    wire.TokenReprintRequest,
    wire.PurchaseResponse,
    200,
    "TOKEN_REPRINT_REQUEST",
    "Reprint a token",
)
FAULT_REPORT = Operation(
    "createFaultReport",
    Kind.FAULT_REPORT,
    "/faultReports/{id}",
    wire.FaultReportRequest,
    wire.FaultReportResponse,
    201,
    "FAULT_REPORT_REQUEST",
    "Report a meter fault",
)
KEY_CHANGE = Operation(
    "createKeyChangeTokenRequest",
    Kind.KEY_CHANGE,
    "/keyChangeTokenRequests/{id}",
    wire.KeyChangeTokenRequest,
    wire.KeyChangeTokenResponse,
    201,
    "KEY_CHANGE_TOKEN_REQUEST",
    "Request key-change tokens",
)
KEY_CHANGE_CONFIRMATION = Operation(
    "confirmKeyChange",
    Kind.KEY_CHANGE_CONFIRMATION,
    "/keyChangeTokenRequests/{requestId}/confirmations/{id}",
    wire.KeyChangeConfirmation,
    wire.KeyChangeConfirmation,
    202,
    "CONFIRMATION_ADVICE",
    "Confirm key-change tokens",
)

ALL = (
    METER_LOOKUP,
    PURCHASE,
    RETRY,
    CONFIRMATION,
    REVERSAL,
    TRIAL,
    REPRINT,
    FAULT_REPORT,
    KEY_CHANGE,
    KEY_CHANGE_CONFIRMATION,
)

# The request each advice kind refers to.
ADVISED_KIND = {
    Kind.CONFIRMATION: Kind.PURCHASE,
    Kind.REVERSAL: Kind.PURCHASE,
    Kind.KEY_CHANGE_CONFIRMATION: Kind.KEY_CHANGE,
}
