"""PPU v3 wire models (msgspec structs), shared by the retail API and the provider adapter (the
simulated provider checks messages its own way). Constraints follow the interface's field rules
so that one decode validates a message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from xhuma.domain.currencies import ISO_NUMERIC_PATTERN, MAX_MINOR_UNITS

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})$"

Uuid = Annotated[str, Meta(pattern=UUID_PATTERN, description="an RFC 4122 UUID, 8-4-4-4-12 hex")]
DateTime = Annotated[str, Meta(pattern=RFC3339_PATTERN, description="an RFC 3339 date-time")]
MinorUnits = Annotated[int, Meta(ge=0, le=MAX_MINOR_UNITS, description="amount in minor units (cents)")]
CurrencyCode = Annotated[str, Meta(pattern=ISO_NUMERIC_PATTERN, description="an ISO 4217 numeric currency code")]
LedgerMinorUnits = Annotated[
    int, Meta(ge=-MAX_MINOR_UNITS, le=MAX_MINOR_UNITS, description="amount in minor units (cents)")
]


class Wire(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base for every wire struct: camelCase names, unset optional fields are omitted."""


class Institution(Wire, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=40)]
    name: Annotated[str, Meta(max_length=40)]


class MerchantName(Wire, kw_only=True):
    name: Annotated[str, Meta(max_length=23)]
    city: Annotated[str, Meta(max_length=13)]
    region: Annotated[str, Meta(max_length=2)]
    country: Annotated[str, Meta(max_length=2)]


class Merchant(Wire, kw_only=True):
    merchant_type: Annotated[str, Meta(pattern=r"^[0-9]{4}$")]
    merchant_id: Annotated[str, Meta(min_length=15, max_length=15)]
    merchant_name: MerchantName


class Originator(Wire, kw_only=True):
    institution: Institution
    terminal_id: Annotated[str, Meta(min_length=8, max_length=8)]
    merchant: Merchant
    operator_id: Annotated[str, Meta(max_length=30)] | None = None
    channel_id: Annotated[str, Meta(max_length=50)] | None = None


class ThirdPartyIdentifier(Wire, kw_only=True):
    institution_id: Annotated[str, Meta(min_length=1)]
    transaction_identifier: str | None = None


class LedgerAmount(Wire, kw_only=True):
    amount: LedgerMinorUnits
    currency: CurrencyCode
    ledger_indicator: Literal["DEBIT", "CREDIT"] | None = None


class Tender(Wire, kw_only=True):
    amount: LedgerAmount
    tender_type: Literal[
        "CASH",
        "CHEQUE",
        "CREDIT_CARD",
        "DEBIT_CARD",
        "WALLET",
        "ROUNDING",
        "GIFT_CARD",
        "LOYALTY_CARD",
        "OTHER",
    ]
    account_type: str | None = None
    card_number: Annotated[str, Meta(pattern=r"^[0-9]{6}[0-9*]{0,13}$")] | None = None
    reference: Annotated[str, Meta(max_length=40)] | None = None


class Amounts(Wire, kw_only=True):
    request_amount: LedgerAmount | None = None
    approved_amount: LedgerAmount | None = None
    fee_amount: LedgerAmount | None = None
    balance_amount: LedgerAmount | None = None
    additional_amounts: dict[str, LedgerAmount] | None = None


class KeyChangeData(Wire, kw_only=True):
    new_supply_group_code: Annotated[str, Meta(pattern=r"^[0-9]{6}$")] | None = None
    new_key_revision_number: Annotated[str, Meta(pattern=r"^[0-9]$")] | None = None
    new_tariff_index: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] | None = None


class Meter(Wire, kw_only=True):
    meter_id: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9]{1,20}$")]
    track2_data: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9=]{34}$")] | None = None
    service_type: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9]{0,12}$")] | None = None
    supply_group_code: Annotated[str, Meta(pattern=r"^[0-9]{6}$")] | None = None
    key_revision_num: Annotated[str, Meta(pattern=r"^[0-9]$")] | None = None
    tariff_index: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] | None = None
    token_tech_code: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] | None = None
    algorithm_code: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] | None = None
    key_change_data: KeyChangeData | None = None


class Customer(Wire, kw_only=True):
    first_name: Annotated[str, Meta(max_length=40)] | None = None
    last_name: Annotated[str, Meta(max_length=40)] | None = None
    address: Annotated[str, Meta(max_length=80)] | None = None
    status: str | None = None
    msisdn: Annotated[str, Meta(pattern=r"^\+?[1-9]\d{0,14}$")] | None = None
    email_address: str | None = None
    profile_id: str | None = None
    address_details: dict[str, Any] | None = None
    date_of_birth: DateTime | None = None


class Transaction(Wire, kw_only=True):
    """Fields every PPU request carries; a response echoes the first seven."""

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


class MeterLookupRequest(Transaction, kw_only=True):
    meter: Meter


class PurchaseRequest(Transaction, kw_only=True):
    meter: Meter
    purchase_amount: LedgerAmount
    utility_type: str | None = None
    msisdn: Annotated[str, Meta(pattern=r"(^\+?[1-9]\d{1,14}$)|(^[0][0-9]{9}$)")] | None = None
    tenders: list[Tender] | None = None
    payment_methods: list[dict[str, Any]] | None = None


class TokenReprintRequest(Transaction, kw_only=True):
    meter: Meter
    original_ref: str | None = None


FaultType = Literal[
    "SeriousBoxDamage",
    "FireWaterDamage",
    "MeterDead",
    "KeepsTripping",
    "NoTrip",
    "DisplayLightsButtons",
    "NetworkFaultReport",
    "IncorrectSGC",
    "IncorrectTI",
    "ConvertedFrmConventional",
    "MeterChangedOut",
    "NewInstallation",
    "SERIOUS_BOX_DAMAGE",
    "FIRE_WATER_DAMAGE",
    "METER_DEAD",
    "KEEPS_TRIPPING",
    "NO_TRIP",
    "DISPLAY_LIGHTS_BUTTONS",
    "NETWORK_FAULT_REPORT",
    "INCORRECT_SGC",
    "INCORRECT_TI",
    "CONVERTED_FRM_CONVENTIONAL",
    "METER_CHANGED_OUT",
    "NEW_INSTALLATION",
]
"""The display strings are the wire form; the Java constant names are accepted defensively."""


class FaultReportRequest(Transaction, kw_only=True):
    meter: Meter
    contact_number: Annotated[str, Meta(max_length=20)]
    fault_type: FaultType
    customer: Customer | None = None
    fault_description: Annotated[str, Meta(max_length=160)] | None = None


class KeyChangeTokenRequest(Transaction, kw_only=True):
    meter: Meter


class BasicAdvice(Wire, kw_only=True):
    id: Uuid
    request_id: Uuid
    time: DateTime
    third_party_identifiers: list[ThirdPartyIdentifier]
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None


class ConfirmationAdvice(BasicAdvice, kw_only=True):
    tenders: list[Tender] | None = None


class ReversalAdvice(BasicAdvice, kw_only=True):
    reversal_reason: Literal["TIMEOUT", "CANCELLED", "RESPONSE_NOT_FINAL"]


class KeyChangeConfirmation(BasicAdvice, kw_only=True):
    pass


ERROR_TYPES = (
    "DUPLICATE_RECORD",
    "FORMAT_ERROR",
    "FUNCTION_NOT_SUPPORTED",
    "GENERAL_ERROR",
    "INVALID_AMOUNT",
    "ROUTING_ERROR",
    "TRANSACTION_NOT_SUPPORTED",
    "UNABLE_TO_LOCATE_RECORD",
    "UPSTREAM_UNAVAILABLE",
    "UNKNOWN_METER_ID",
    "TRANSACTION_DECLINED",
    "INVALID_MERCHANT",
    "INVALID_AN32_TOKEN",
    "DO_NOT_HONOR",
    "INVALID_MSISDN",
    "INVALID_LOYALTY_CARD",
    "UTILITY_INVALID",
    "SYSTEM_MALFUNCTION",
    "METER_KEY_INVALID",
    "AMOUNT_TOO_LOW",
    "AMOUNT_TOO_HIGH",
    "NO_FREE_UNITS_DUE",
    "INSUFFICIENT_FUNDS",
    "LIMIT_EXCEEDED",
    "METER_ID_BLOCKED",
    "OUTCOME_UNKNOWN",
)

REQUEST_TYPES = (
    "METER_LOOKUP_REQUEST",
    "TOKEN_PURCHASE_REQUEST",
    "TOKEN_PURCHASE_RETRY_REQUEST",
    "TOKEN_REPRINT_REQUEST",
    "FAULT_REPORT_REQUEST",
    "KEY_CHANGE_TOKEN_REQUEST",
    "CONFIRMATION_ADVICE",
    "REVERSAL_ADVICE",
    "NOTIFY_TOKEN_PURCHASE",
    "TOKEN_PURCHASE_TRIAL_REQUEST",
)


class ErrorDetail(Wire, kw_only=True):
    error_type: str
    error_message: str
    request_type: str | None = None
    id: str | None = None
    original_id: str | None = None
    detail_message: Any = None


# Response models, used for the OpenAPI document. Upstream responses are read leniently as
# plain JSON objects (real providers omit "required" fields), so these are never used to decode.


class Utility(Wire, kw_only=True):
    name: str | None = None
    address: str | None = None
    vat_reg_num: str | None = None
    client_id: str | None = None
    message: str | None = None


class TaxableAmount(LedgerAmount, kw_only=True):
    tax: int | None = None
    tax_type: str | None = None
    tax_rate: float | None = None


class TariffBlock(Wire, kw_only=True):
    units: float
    rate: float


class Token(Wire, kw_only=True):
    token_type: Literal["STD", "BSST", "REFUND", "KC", "PWRLMT"]
    units: float
    amount: TaxableAmount
    token: str
    receipt_num: str | None = None
    tariff_calc: list[TariffBlock] | None = None


class DebtRecoveryCharge(Wire, kw_only=True):
    amount: TaxableAmount
    description: str
    balance: LedgerAmount
    receipt_num: str | None = None


class ServiceCharge(Wire, kw_only=True):
    amount: TaxableAmount
    description: str


class MeterLookupResponse(Transaction, kw_only=True):
    meter: Meter
    customer: Customer
    utility: Utility
    min_amount: LedgerAmount | None = None
    max_amount: LedgerAmount | None = None
    arrears_amount: LedgerAmount | None = None
    bsst_due: bool | None = None


class PurchaseResponse(Transaction, kw_only=True):
    meter: Meter
    customer: Customer
    utility: Utility
    purchase_total: LedgerAmount | None = None
    tax_total: LedgerAmount | None = None
    amounts: Amounts | None = None
    utility_type: str | None = None
    tokens: list[Token] | None = None
    debt_recovery_charges: list[DebtRecoveryCharge] | None = None
    service_charges: list[ServiceCharge] | None = None
    vat_invoice_number: str | None = None


class FaultReportResponse(Transaction, kw_only=True):
    reference: str
    description: str


class KeyChangeTokenResponse(Transaction, kw_only=True):
    meter: Meter
    tokens: list[Token] | None = None
