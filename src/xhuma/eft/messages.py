"""The Regulated Payments messages xhuma sends the homing bank for inbound EFT, and the status
reports it takes back (reference §7). Amounts here are decimal major units with an alphabetic
currency (`{"currency": "ZAR", "value": 91.54}`), never the retail interfaces' cents.

Field names follow the public partner API as far as it is published; where the reference marks
them inferred, so are they here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

CORRECTS = {"sec_20": "credit", "sec_60": "debit"}
"""What a correction reverses: a 20 an applied credit, a 60 an applied debit (layout §5.2)."""
CREDIT_PATH = "/inbound/credit-transfer"
DEBIT_PATH = "/inbound/direct-debit"
XHUMA_NAMESPACE = uuid.UUID("6f0f3a52-8d0e-4b57-9f7a-3c1c2a9e0e11")


class EftAmount(msgspec.Struct, frozen=True):
    """Major units and an ISO 4217 alpha code: a type of its own, so cents cannot slip in."""

    currency: str
    value: Decimal

    @classmethod
    def from_cents(cls, cents: int) -> EftAmount:
        return cls("ZAR", Decimal(cents).scaleb(-2))


@dataclass(frozen=True)
class Sent:
    path: str
    message_id: str
    end_to_end_id: str
    body: dict[str, Any]


def build(row: dict[str, Any], *, bank_member_id: str, now: datetime | None = None) -> Sent:
    """The CreditTransfer or DirectDebit for one stored inbound transaction. Its identifiers
    are derived from the transaction, so a message rebuilt after a crash is the same message."""
    credit = row["kind"] == "credit"
    end_to_end = f"{row['user_code']}{row['action_date'].replace('-', '')}{row['sequence_number']:06d}"
    message_id = f"XH{row['id']:012d}"
    moment = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    homing = {
        "identification": {"schema": "GENERIC", "value": row["homing_account"]},
        "name": row["homing_account_name"],
        "type": _ACCOUNT_TYPES.get(row["account_type"], "OTHR"),
    }
    homing_agent = {"branch": {"identification": f"{row['homing_branch']:06d}"}, "memberId": bank_member_id}
    user = {"identification": {"schema": "GENERIC", "value": row["user_account"]}}
    user_agent = {"branch": {"identification": f"{row['user_branch']:06d}"}}
    body: dict[str, Any] = {
        "messageIdentifiers": {"messageIdentification": message_id, "creationDateTime": moment},
        "transactionIdentifiers": {
            "endToEndIdentification": end_to_end,
            "uetr": str(uuid.uuid5(XHUMA_NAMESPACE, f"{row['file_id']}/{row['line']}")),
        },
        "amounts": {"instructedAmount": msgspec.to_builtins(EftAmount.from_cents(row["amount_cents"]))},
        "paymentScheme": {"schema": "ZA_EFT", "schemeData": {"userReference": row["user_reference"]}},
        "paymentMethod": "CreditTransfer" if credit else "DirectDebit",
        "settlementDate": row["action_date"],
    }
    if credit:
        body.update(
            creditor={"knownAsName": row["homing_account_name"]},
            creditorAccount=homing,
            creditorAgent=homing_agent,
            debtor={"knownAsName": row["user_reference"][:10].strip()},
            debtorAccount=user,
            debtorAgent=user_agent,
        )
    else:
        body.update(
            debtor={"knownAsName": row["homing_account_name"]},
            debtorAccount=homing,
            debtorAgent=homing_agent,
            creditor={"knownAsName": row["user_reference"][:10].strip()},
            creditorAccount=user,
            creditorAgent=user_agent,
        )
    return Sent(CREDIT_PATH if credit else DEBIT_PATH, message_id, end_to_end, body)


_ACCOUNT_TYPES = {1: "CACC", 2: "SVGS", 3: "TRAN", 4: "LOAN", 6: "OTHR"}


class MessageIdentifiers(msgspec.Struct, rename="camel"):
    message_identification: str
    creation_date_time: str | None = None


class ReasonCode(msgspec.Struct):
    value: str
    schema: str | None = None


class StatusReason(msgspec.Struct):
    reason: ReasonCode | None = None
    description: str | None = None


class Status(msgspec.Struct, rename="camel"):
    outcome: Literal["APPROVED", "REJECTED", "CANCELLED", "PENDING"]
    reason_info: list[StatusReason] = []


class TransactionIdentifiers(msgspec.Struct, rename="camel"):
    end_to_end_identification: str


class PaymentStatusReport(msgspec.Struct, rename="camel"):
    """What a homing bank reports; read leniently (unknown fields are ignored)."""

    message_identifiers: MessageIdentifiers
    original_message_identifiers: MessageIdentifiers
    transaction_identifiers: TransactionIdentifiers
    status: Status


RETURN_PATH = "/inbound/payment-return"


def build_return(correction: dict[str, Any], original: dict[str, Any], *, bank_member_id: str) -> Sent:
    """A PaymentReturn asking the homing bank to undo an applied original (a system error
    correction): it names the original's end-to-end id and carries the correction's reason."""
    sent = build(original, bank_member_id=bank_member_id)
    message_id = f"XH{correction['id']:012d}"
    body = dict(sent.body)
    body["messageIdentifiers"] = {**sent.body["messageIdentifiers"], "messageIdentification": message_id}
    body["originalMessageIdentifiers"] = sent.body["messageIdentifiers"] | {
        "messageIdentification": original["message_id"]
    }
    body["paymentScheme"] = {
        "schema": "ZA_EFT",
        "schemeData": {"userReference": original["user_reference"], "returnType": "SYSTEM_ERROR_CORRECTION_REQUEST"},
    }
    body["returnReasonInfo"] = [
        {
            "reason": {"schema": "PROPRIETARY", "value": f"SEC{correction['sec_reason']:02d}"},
            "description": f"system error correction {correction['correction_reference']}",
        }
    ]
    return Sent(RETURN_PATH, message_id, sent.end_to_end_id, body)
