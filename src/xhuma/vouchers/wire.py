"""SUV v1 wire models (msgspec structs), shared by the retail API and the provider adapter (the
voucher simulator checks messages its own way).

The service-interface-base parties (institution, originator, merchant, customer) are the ones
PPU uses, so they come from `xhuma.ppu.wire`. What differs is redefined here: SUV clients send
`currency` as a bare number (710) as well as a string, and the SUV interface requires every
third-party identifier to carry its transaction identifier. Decoding is strict (unknown fields
are refused), unlike PPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from msgspec import Meta

from xhuma.domain.currencies import ISO_NUMERIC, MAX_MINOR_UNITS
from xhuma.ppu.wire import CurrencyCode, Customer, DateTime, Institution, Originator, Uuid, Wire

if TYPE_CHECKING:
    NumericCurrency = int
else:
    NumericCurrency = Literal[tuple(sorted(int(code) for code in ISO_NUMERIC))]
Currency = CurrencyCode | NumericCurrency
"""ISO 4217 numeric code, as a 3-digit string or (as the SUV test pack sends it) a number."""


def currency_code(value: str | int) -> str:
    return value if isinstance(value, str) else f"{value:03d}"


class ThirdPartyIdentifier(Wire, kw_only=True):
    institution_id: Annotated[str, Meta(min_length=1)]
    transaction_identifier: Annotated[str, Meta(min_length=1)]


class LedgerAmount(Wire, kw_only=True):
    amount: Annotated[int, Meta(ge=0, le=MAX_MINOR_UNITS)]
    currency: Currency
    ledger_indicator: Literal["DEBIT", "CREDIT"] | None = None


class Amounts(Wire, kw_only=True):
    request_amount: LedgerAmount | None = None
    approved_amount: LedgerAmount | None = None
    fee_amount: LedgerAmount | None = None
    balance_amount: LedgerAmount | None = None
    additional_amounts: dict[str, LedgerAmount] | None = None


class Tender(Wire, kw_only=True):
    amount: LedgerAmount
    tender_type: Literal[
        "CASH", "CHEQUE", "CREDIT_CARD", "DEBIT_CARD", "WALLET", "ROUNDING", "GIFT_CARD", "LOYALTY_CARD", "OTHER"
    ]
    account_type: str | None = None
    card_number: Annotated[str, Meta(pattern=r"^[0-9]{6}[0-9*]{0,13}$")] | None = None
    reference: Annotated[str, Meta(max_length=40)] | None = None


class Voucher(Wire, kw_only=True):
    code: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    expiry_date: DateTime | None = None
    redeem_instructions: list[str] | None = None
    serial_number: Annotated[str, Meta(max_length=100)] | None = None
    batch_number: Annotated[str, Meta(max_length=100)] | None = None


class Product(Wire, kw_only=True):
    product_id: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    name: str | None = None
    description: Annotated[str, Meta(max_length=250)] | None = None
    amount: LedgerAmount | None = None
    min_amount: LedgerAmount | None = None
    max_amount: LedgerAmount | None = None
    barcode: str | None = None
    is_fixed_value: bool | None = None
    channel_product_listings: list[dict[str, Any]] | None = None
    receiver: Institution | None = None


class Transaction(Wire, kw_only=True):
    """Fields every SUV request carries; a response echoes the first seven (§1.6)."""

    id: Uuid
    time: DateTime
    originator: Originator
    client: Institution
    third_party_identifiers: list[ThirdPartyIdentifier]
    settlement_entity: Institution | None = None
    receiver: Institution | None = None
    slip_data: dict[str, Any] | None = None
    basket_ref: str | None = None
    tran_type: str | None = None
    src_acc_type: str | None = None
    dest_acc_type: str | None = None
    stan: str | None = None
    rrn: str | None = None


class ProvisionRequest(Transaction, kw_only=True):
    voucher: Voucher | None = None
    product: Product | None = None
    amounts: Amounts | None = None
    pos_info: dict[str, Any] | None = None
    recipient: Customer | None = None


class RedemptionRequest(Transaction, kw_only=True):
    voucher: Voucher
    product: Product | None = None
    amounts: Amounts | None = None
    pos_info: dict[str, Any] | None = None
    customer: Customer | None = None


class RefundRequest(Transaction, kw_only=True):
    voucher: Voucher
    product: Product | None = None
    amounts: Amounts | None = None
    pos_info: dict[str, Any] | None = None


class BasicAdvice(Wire, kw_only=True):
    id: Uuid
    request_id: Uuid
    time: DateTime
    third_party_identifiers: list[ThirdPartyIdentifier]
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None


class TenderAdvice(BasicAdvice, kw_only=True):
    tenders: list[Tender] | None = None


class BasicReversal(BasicAdvice, kw_only=True):
    reversal_reason: Literal["TIMEOUT", "CANCELLED", "RESPONSE_NOT_FINAL"]


class FormatError(Wire, kw_only=True):
    field: str
    msg: str
    value: Any = None


class ErrorDetail(Wire, kw_only=True):
    """SUV's error body: `originalId` is omitted, never null, when it does not apply."""

    error_type: str
    error_message: str
    id: str | None = None
    original_id: str | None = None
    detail_message: dict[str, Any] | None = None


ERROR_TYPES = frozenset(
    {
        "DUPLICATE_RECORD",
        "FORMAT_ERROR",
        "UNABLE_TO_LOCATE_RECORD",
        "AUTHENTICATION_ERROR",
        "VOUCHER_ALREADY_CONFIRMED",
        "VOUCHER_ALREADY_REVERSED",
        "VOUCHER_NOT_REDEEMABLE",
        "VOUCHER_ALREADY_REDEEMED",
        "VOUCHER_NOT_REDEEMED",
        "REDEMPTION_ALREADY_CONFIRMED",
        "REDEMPTION_ALREADY_REVERSED",
        "REDEMPTION_NOT_CONFIRMED",
        "VOUCHER_ALREADY_REFUNDED",
        "VOUCHER_NOT_REFUNDED",
        "REFUND_ALREADY_CONFIRMED",
        "REFUND_ALREADY_REVERSED",
        "VOUCHER_STATUS_UNKNOWN",
        "INSUFFICIENT_FUNDS",
        "INVALID_ACCOUNT",
        "TRANSACTION_DECLINED",
        "LIMIT_EXCEEDED",
        "GENERAL_ERROR",
        "FUNCTION_NOT_SUPPORTED",
        "UPSTREAM_UNAVAILABLE",
        "INVALID_PRODUCT",
        "INVALID_AMOUNT",
    }
)
"""The interface's documented values, plus the switch's own (unknown product, amount out of
range, upstream down, function not supported by the provider)."""
