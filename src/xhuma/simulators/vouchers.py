"""A voucher provider speaking the Single Use Voucher interface v1, as a real HTTP server.

Two kinds: `full` takes everything the interface has; `stellr` is modelled on Stellr, which
issues vouchers but takes no advices, retries, redemptions or refunds (501). It follows the
rules of a conforming voucher server (reference §6.1, §6.2), judging every step with its own
voucher state machine (below), and keeps a ledger of what it issued
so tests can prove a lost answer never led to a second voucher. Faults are injected from the
command line or at run time through `POST /_sim/config`; `lose_responses` makes it issue a
voucher and then never answer, as a network failure would."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.httpserver import run_asgi
from xhuma.simulators.common import (
    TIMESTAMP,
    Either,
    Flag,
    Free,
    Items,
    Obj,
    Problem,
    Table,
    Text,
    Uuid,
    Whole,
    id_of,
    json_response,
    obj,
    one_of,
    read_json,
    whole,
)

KINDS = ("full", "stellr")
MODES = ("normal", "unavailable", "hang", "garbage")
CURRENCY = "710"
SETTABLE: dict[str, type] = {"latency_ms": float, "lose_responses": int, "mode": str}
"""What `POST /_sim/config` may change, and the JSON type each takes."""
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class SimProduct:
    """One of the provider's own products: a fixed value, or any amount in [minimum, maximum]."""

    name: str
    category: str
    fixed: int | None = None
    minimum: int = 0
    maximum: int = 0

    def amount_for(self, code: str, requested: int | None) -> int | str:
        """The amount to issue, or why the request's amount cannot be sold."""
        if self.fixed is not None:
            if requested not in (None, self.fixed):
                return f"product {code} is fixed at {self.fixed} cents, {requested} requested"
            return self.fixed
        if requested is None:
            return f"product {code} needs amounts.requestAmount ({self.minimum} to {self.maximum} cents)"
        if not self.minimum <= requested <= self.maximum:
            return f"amount {requested} is outside {self.minimum} to {self.maximum} cents for product {code}"
        return requested

    def as_wire(self, code: str) -> dict[str, Any]:
        listed: dict[str, Any] = {
            "productId": code,
            "name": self.name,
            "description": f"{self.category} voucher",
            "isFixedValue": self.fixed is not None,
        }
        if self.fixed is not None:
            listed["amount"] = {"amount": self.fixed, "currency": CURRENCY}
        else:
            listed["minAmount"] = {"amount": self.minimum, "currency": CURRENCY}
            listed["maxAmount"] = {"amount": self.maximum, "currency": CURRENCY}
        return listed


PRODUCTS = {
    "full": {
        "VCH-GIFT-100": SimProduct("Gift card R100", "gift", fixed=10000),
        "VCH-STREAM": SimProduct("Streaming credit", "streaming", minimum=5000, maximum=50000),
        "VCH-AIR-10": SimProduct("Airtime R10", "airtime", fixed=1000),
        "VCH-GAME-250": SimProduct("Gaming voucher R250", "gaming", fixed=25000),
        "VCH-BUS": SimProduct("Bus fare", "transport", minimum=1000, maximum=20000),
        "VCH-MEAL-50": SimProduct("Meal voucher R50", "food", fixed=5000),
    },
    "stellr": {
        "STL-GIFT-50": SimProduct("Stellr gift R50", "gift", fixed=5000),
        "STL-GIFT-100": SimProduct("Stellr gift R100", "gift", fixed=10000),
        "STL-GIFT-ANY": SimProduct("Stellr gift, any value", "gift", minimum=5000, maximum=100000),
        "STL-STREAM": SimProduct("Stellr streaming", "streaming", minimum=5000, maximum=30000),
        "STL-GAME-100": SimProduct("Stellr gaming R100", "gaming", fixed=10000),
        "STL-TAXI": SimProduct("Stellr taxi fare", "transport", minimum=2000, maximum=15000),
    },
}
"""Each kind's catalogue, by the provider's own product code; amounts in cents of ZAR (710)."""


# --- the voucher's life, as this provider keeps it (reference §6.1, §6.2) -----------------------

# A voucher's states, named as the ledger shows them.
PROVISIONED, CONFIRMED_PROVISIONED, REVERSED = "provisioned", "confirmed_provisioned", "reversed"
REDEEMED, CONFIRMED_REDEEMED, REFUNDED = "redeemed", "confirmed_redeemed", "refunded"


@dataclass(frozen=True)
class Refused:
    """A step the voucher's state does not allow: answered 400 with this error type."""

    error_type: str

    @property
    def wording(self) -> str:
        return self.error_type.replace("_", " ").capitalize()


def confirm_provision(state: str) -> str | Refused:
    if state == REVERSED:
        return Refused("VOUCHER_ALREADY_REVERSED")
    # A confirmation repeated after later steps changes nothing.
    return CONFIRMED_PROVISIONED if state == PROVISIONED else state


def reverse_provision(state: str) -> str | Refused:
    return REVERSED if state in (PROVISIONED, REVERSED) else Refused("VOUCHER_ALREADY_CONFIRMED")


def redeem(state: str) -> str | Refused:
    if state == CONFIRMED_PROVISIONED:
        return REDEEMED
    if state in (PROVISIONED, REVERSED):
        return Refused("VOUCHER_NOT_REDEEMABLE")
    return Refused("VOUCHER_ALREADY_REDEEMED")


def confirm_redemption(state: str) -> str | Refused:
    return CONFIRMED_REDEEMED if state == REDEEMED else Refused("VOUCHER_NOT_REDEEMED")


def reverse_redemption(state: str) -> str | Refused:
    if state == REDEEMED:
        return CONFIRMED_PROVISIONED
    if state in (CONFIRMED_REDEEMED, REFUNDED):
        return Refused("REDEMPTION_ALREADY_CONFIRMED")
    return Refused("VOUCHER_NOT_REDEEMED")


def refund(state: str) -> str | Refused:
    if state == CONFIRMED_REDEEMED:
        return REFUNDED
    if state == REDEEMED:
        return Refused("REDEMPTION_NOT_CONFIRMED")
    if state == REFUNDED:
        return Refused("VOUCHER_ALREADY_REFUNDED")
    return Refused("VOUCHER_NOT_REDEEMED")


def confirm_refund(state: str) -> str | Refused:
    return CONFIRMED_PROVISIONED if state == REFUNDED else Refused("VOUCHER_NOT_REFUNDED")


def reverse_refund(state: str) -> str | Refused:
    return CONFIRMED_REDEEMED if state == REFUNDED else Refused("REFUND_ALREADY_CONFIRMED")


REVERSED_FIRST = {
    "provision": "VOUCHER_ALREADY_REVERSED",
    "redemption": "REDEMPTION_ALREADY_REVERSED",
    "refund": "REFUND_ALREADY_REVERSED",
}
"""What a request is refused with when its reversal came first (and was remembered)."""

# --- what a request must look like (strict: fields the interface does not name are refused) -----

CURRENCY_CODE = re.compile(r"[0-9]{3}")
PARTY = obj("id name", id=Text(1, 40), name=Text(0, 40))
MERCHANT = obj(
    "merchantType merchantId merchantName",
    merchantType=Text(pattern=re.compile(r"[0-9]{4}")),
    merchantId=Text(15, 15),
    merchantName=obj(
        "name city region country", name=Text(0, 23), city=Text(0, 13), region=Text(0, 2), country=Text(0, 2)
    ),
)
ORIGINATOR = obj(
    "institution terminalId merchant",
    institution=PARTY,
    terminalId=Text(8, 8),
    merchant=MERCHANT,
    operatorId=Text(0, 30),
    channelId=Text(0, 50),
)
IDENTIFIERS = Items(obj("institutionId transactionIdentifier", institutionId=Text(1), transactionIdentifier=Text(1)))
MONEY = obj(
    "amount currency",
    amount=Whole(least=0),
    currency=Either(Text(pattern=CURRENCY_CODE), Whole(0, 999)),  # "710" or, as test packs send it, 710
    ledgerIndicator=one_of("DEBIT CREDIT"),
)
AMOUNTS = obj(
    requestAmount=MONEY, approvedAmount=MONEY, feeAmount=MONEY, balanceAmount=MONEY, additionalAmounts=Table(MONEY)
)
TENDER = obj(
    "amount tenderType",
    amount=MONEY,
    tenderType=one_of("CASH CHEQUE CREDIT_CARD DEBIT_CARD WALLET ROUNDING GIFT_CARD LOYALTY_CARD OTHER"),
    accountType=Text(),
    cardNumber=Text(pattern=re.compile(r"[0-9]{6}[0-9*]{0,13}")),
    reference=Text(0, 40),
)
VOUCHER = obj(
    code=Text(1, 100),
    expiryDate=Text(pattern=TIMESTAMP),
    redeemInstructions=Items(Text()),
    serialNumber=Text(0, 100),
    batchNumber=Text(0, 100),
)
PRODUCT = obj(
    productId=Text(1, 40),
    name=Text(),
    description=Text(0, 250),
    amount=MONEY,
    minAmount=MONEY,
    maxAmount=MONEY,
    barcode=Text(),
    isFixedValue=Flag(),
    channelProductListings=Items(Free()),
    receiver=PARTY,
)
PERSON = obj(
    firstName=Text(0, 40),
    lastName=Text(0, 40),
    address=Text(0, 80),
    status=Text(),
    msisdn=Text(),
    emailAddress=Text(),
    profileId=Text(),
    addressDetails=Free(),
    dateOfBirth=Text(pattern=TIMESTAMP),
)
REQUEST = obj(
    "id time originator client thirdPartyIdentifiers",
    id=Uuid(),
    time=Text(pattern=TIMESTAMP),
    originator=ORIGINATOR,
    client=PARTY,
    thirdPartyIdentifiers=IDENTIFIERS,
    settlementEntity=PARTY,
    receiver=PARTY,
    slipData=Free(),
    basketRef=Text(),
    tranType=Text(),
    srcAccType=Text(),
    destAccType=Text(),
    stan=Text(),
    rrn=Text(),
)
ADVICE = obj(
    "id requestId time thirdPartyIdentifiers",
    id=Uuid(),
    requestId=Uuid(),
    time=Text(pattern=TIMESTAMP),
    thirdPartyIdentifiers=IDENTIFIERS,
    stan=Text(),
    rrn=Text(),
    amounts=AMOUNTS,
)
PROVISION_SHAPE = REQUEST.extended(voucher=VOUCHER, product=PRODUCT, amounts=AMOUNTS, posInfo=Free(), recipient=PERSON)
REDEMPTION_SHAPE = REQUEST.extended(
    ("voucher",), voucher=VOUCHER, product=PRODUCT, amounts=AMOUNTS, posInfo=Free(), customer=PERSON
)
REFUND_SHAPE = REQUEST.extended(("voucher",), voucher=VOUCHER, product=PRODUCT, amounts=AMOUNTS, posInfo=Free())
REVERSAL_SHAPE = ADVICE.extended(("reversalReason",), reversalReason=one_of("TIMEOUT CANCELLED RESPONSE_NOT_FINAL"))


@dataclass(frozen=True)
class Call:
    """One POST of the interface as this provider serves it."""

    name: str
    path: str
    shape: Obj
    request: str
    """The request it is, or for an advice the kind of request it refers to."""
    step: Callable[[str], str | Refused] | None = None
    """What it does to the voucher (None for a provision or its retry)."""
    advice: bool = False
    """Whether it advises the outcome of an earlier request (named by its `requestId`)."""
    reverses: bool = False


BASE_PATH = "/suv/v1"
PROVISION = Call("provisionVoucher", "/vouchers", PROVISION_SHAPE, "provision")
RETRY = Call("retryProvisionVoucher", "/vouchers/{provisionId}/retry", PROVISION_SHAPE, "provision")
CALLS = (
    PROVISION,
    RETRY,
    Call(
        "confirmVoucher",
        "/vouchers/confirmations",
        ADVICE.extended(tenders=Items(TENDER)),
        "provision",
        confirm_provision,
        advice=True,
    ),
    Call("reverseVoucher", "/vouchers/reversals", REVERSAL_SHAPE, "provision", reverse_provision, True, True),
    Call("redeemVoucher", "/redemptions", REDEMPTION_SHAPE, "redemption", redeem),
    Call("confirmRedeem", "/redemptions/confirmations", ADVICE, "redemption", confirm_redemption, advice=True),
    Call("reverseRedeem", "/redemptions/reversals", REVERSAL_SHAPE, "redemption", reverse_redemption, True, True),
    Call("refundVoucher", "/refunds", REFUND_SHAPE, "refund", refund),
    Call("confirmRefund", "/refunds/confirmations", ADVICE, "refund", confirm_refund, advice=True),
    Call("reverseRefund", "/refunds/reversals", REVERSAL_SHAPE, "refund", reverse_refund, True, True),
)


@dataclass
class VoucherSimConfig:
    name: str = "vouchr"
    kind: str = "full"
    latency_ms: float = 0.0
    mode: str = "normal"
    lose_responses: int = 0
    """The next N provisions issue a voucher and then never answer."""
    seed: int | None = None


@dataclass
class Step:
    """An accepted provision, redemption or refund, and the voucher state it last left.

    Judging an advice by its own request's state, not the voucher's, keeps an advice for an
    earlier redemption from moving a later one: a step that is no longer the voucher's latest
    is settled, and every change the state machine allows from there is refused or a no-op."""

    kind: str
    code: str
    state: str
    amount: int
    response: dict[str, Any]
    product: str | None = None
    retries: int = 0


@dataclass
class Issued:
    provision_id: str
    amount: int
    latest: str
    """The id of the step that last moved the voucher: its state is the voucher's."""


@dataclass
class Partition:
    """What one Basic-auth user (one client) has done here: users never see each other's data."""

    steps: dict[str, Step] = field(default_factory=dict)
    vouchers: dict[str, Issued] = field(default_factory=dict)
    used_ids: set[str] = field(default_factory=set)
    """Every request id taken, refused ones included, for DUPLICATE_RECORD."""
    advices: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_reversals: dict[tuple[str, str], str] = field(default_factory=dict)
    """(request kind, request id) -> id of the reversal that came before its request."""


class VoucherSimulator:
    def __init__(self, config: VoucherSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.partitions: dict[str, Partition] = {}
        self.issued = 0
        self._refs = 0
        self._mode_changed = asyncio.Event()

    # --- the interface ----------------------------------------------------------------------

    async def handle(self, call: Call, request: Request) -> Response:
        fault = await self.fault_answer(request)
        if fault is not None:
            return fault
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        user = _username(request)
        if user is None:
            return _unauthorised()
        raw, unreadable = read_json(await request.body())
        if self.config.kind == "stellr" and call is not PROVISION:
            return _error(501, "FUNCTION_NOT_SUPPORTED", f"{call.name} is not supported", id_of(raw))
        problems = [Problem("$", unreadable)] if unreadable else call.shape.problems(raw, "", True)
        if problems:
            return _format_error(problems, id_of(raw))
        part = self.partitions.setdefault(user, Partition())
        if call.advice:
            return self._advice(call, part, raw)
        message_id: str = raw["id"]
        if raw["client"]["id"] != user:
            return _error(
                400, "AUTHENTICATION_ERROR", f"user {user} may not act as client {raw['client']['id']}", message_id
            )
        if call is RETRY:
            provision_id = request.path_params["provisionId"]
            known = part.steps.get(provision_id)
            if known is not None and known.kind == "provision":
                # The voucher it issued, whatever happened to it since: a retry retrieves.
                known.retries += 1
                return json_response(201, known.response)
            return await self._provision(part, provision_id, raw, request)
        if message_id in part.used_ids:
            step = part.steps.get(message_id)
            detail = {"voucher": {"code": step.code}} if step is not None and step.kind == "provision" else None
            return _error(400, "DUPLICATE_RECORD", "Duplicate id", message_id, detailMessage=detail)
        if call is PROVISION:
            return await self._provision(part, message_id, raw, request)
        return self._redeem_or_refund(call, part, raw)

    async def _provision(self, part: Partition, provision_id: str, raw: dict[str, Any], request: Request) -> Response:
        message_id: str = raw["id"]
        if ("provision", provision_id) in part.early_reversals:
            part.used_ids.add(provision_id)
            return _error(400, REVERSED_FIRST["provision"], "Already reversed", message_id)
        chosen = self._product(raw)
        if isinstance(chosen, Response):
            return chosen
        product_code, amount = chosen
        supplied: str | None = _get(raw, "voucher", "code")
        if supplied is not None and supplied in part.vouchers:
            detail = {"voucher": {"code": supplied}}
            return _error(400, "DUPLICATE_RECORD", "Voucher code already issued", message_id, detailMessage=detail)
        part.used_ids.add(provision_id)
        self.issued += 1
        code = supplied or self._new_code(part)
        answer = self._echo(raw, PRODUCTS[self.config.kind][product_code].name, code, amount)
        if supplied is None:
            answer["voucher"] = {
                "code": code,
                "serialNumber": f"{self.config.name.upper()}{self.issued:010d}",
                "expiryDate": _rfc3339(datetime.now(UTC) + timedelta(days=3 * 365)),
                "redeemInstructions": [f"Redeem {product_code} at any participating store", f"PIN {code}"],
            }
        part.steps[provision_id] = Step("provision", code, PROVISIONED, amount, answer, product_code)
        part.vouchers[code] = Issued(provision_id, amount, latest=provision_id)
        if self.config.lose_responses > 0:
            self.config.lose_responses -= 1
            await self._hold(request, until_mode_changes=False)  # issued, and the answer never comes
        return json_response(201, answer)

    def _product(self, raw: dict[str, Any]) -> tuple[str, int] | Response:
        """The product and amount to issue, or the provider's hard decline (404, §5.2)."""
        message_id: str = raw["id"]
        code: str | None = _get(raw, "product", "productId")
        if code is None:
            return _format_error([Problem("product.productId", "missing")], message_id)
        product = PRODUCTS[self.config.kind].get(code)
        if product is None:
            return _error(404, "TRANSACTION_DECLINED", f"unknown product {code}", message_id)
        requested = _get(raw, "amounts", "requestAmount")
        if requested is not None and _currency(requested["currency"]) != CURRENCY:
            return _error(
                404, "TRANSACTION_DECLINED", f"product {code} is sold in currency {CURRENCY} only", message_id
            )
        amount = product.amount_for(code, None if requested is None else whole(requested["amount"]))
        if isinstance(amount, str):
            return _error(404, "TRANSACTION_DECLINED", amount, message_id)
        return code, amount

    def _new_code(self, part: Partition) -> str:
        while True:
            code = str(self.rng.randrange(10**15, 10**16))
            if code not in part.vouchers:
                return code

    def _redeem_or_refund(self, call: Call, part: Partition, raw: dict[str, Any]) -> Response:
        assert call.step is not None
        kind, message_id = call.request, raw["id"]
        code: str | None = _get(raw, "voucher", "code")
        if code is None:
            return _format_error([Problem("voucher.code", "missing")], message_id)
        part.used_ids.add(message_id)
        reversal_id = part.early_reversals.get((kind, message_id))
        if reversal_id is not None:
            return _error(400, REVERSED_FIRST[kind], "Already reversed", message_id, originalId=reversal_id)
        issued = part.vouchers.get(code)
        if issued is None:
            return _error(404, "UNABLE_TO_LOCATE_RECORD", f"unknown voucher {code}", message_id)
        moved = call.step(part.steps[issued.latest].state)
        if isinstance(moved, Refused):
            return _error(400, moved.error_type, moved.wording, message_id)
        answer = self._echo(raw, f"Voucher {kind}", code, issued.amount)
        part.steps[message_id] = Step(kind, code, moved, issued.amount, answer)
        issued.latest = message_id
        return json_response(201, answer)

    def _advice(self, call: Call, part: Partition, raw: dict[str, Any]) -> Response:
        assert call.step is not None
        kind, advice_id, request_id = call.request, raw["id"], raw["requestId"]
        if advice_id in part.advices:
            return _error(400, "DUPLICATE_RECORD", "Duplicate id", advice_id, originalId=request_id)
        step = part.steps.get(request_id)
        if step is None or step.kind != kind:
            if call.reverses:
                part.early_reversals[(kind, request_id)] = advice_id
                part.advices[advice_id] = {"operation": call.name, "requestId": request_id, "status": 404}
            return _error(
                404, "UNABLE_TO_LOCATE_RECORD", f"unknown {kind} {request_id}", advice_id, originalId=request_id
            )
        moved = call.step(step.state)
        if isinstance(moved, Refused):
            return _error(400, moved.error_type, moved.wording, advice_id, originalId=request_id)
        step.state = moved
        part.advices[advice_id] = {"operation": call.name, "requestId": request_id, "status": 202}
        return json_response(202, raw)

    def _echo(self, raw: dict[str, Any], title: str, code: str, amount: int) -> dict[str, Any]:
        """The request copied (§1.6) with our identifier appended, the value and a slip."""
        self._refs += 1
        answer = dict(raw)
        answer["thirdPartyIdentifiers"] = [
            *raw["thirdPartyIdentifiers"],
            {"institutionId": self.config.name, "transactionIdentifier": f"{self.config.name.upper()}{self._refs:08d}"},
        ]
        answer["amounts"] = {**raw.get("amounts", {}), "approvedAmount": {"amount": amount, "currency": CURRENCY}}
        answer["slipData"] = {
            "messageLines": [{"text": title}, {"text": f"Voucher {code}"}, {"text": f"R{amount / 100:.2f}"}]
        }
        return answer

    # --- faults -----------------------------------------------------------------------------

    async def fault_answer(self, request: Request) -> Response | None:
        if self.config.mode == "unavailable":
            return _error(503, "UPSTREAM_UNAVAILABLE", "down for maintenance", None)
        if self.config.mode == "garbage":
            return Response(b"<html>Bad gateway</html>", 200, media_type="text/html")
        if self.config.mode == "hang" and not await self._hold(request, until_mode_changes=True):
            return Response(status_code=504)  # nobody is left to read it
        return None

    async def _hold(self, request: Request, *, until_mode_changes: bool) -> bool:
        """Leave the request unanswered until its client gives up (False) or, for a hang, until
        the mode changes (True). Waiting on the client rather than sleeping lets the server stop."""
        await request.body()
        gone = asyncio.ensure_future(request.receive())  # after the body, only a disconnect comes
        try:
            while not (until_mode_changes and self.config.mode != "hang"):
                changed = asyncio.ensure_future(self._mode_changed.wait())
                await asyncio.wait({gone, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if gone.done():
                    return False
            return True
        finally:
            gone.cancel()

    # --- look-ups and administration --------------------------------------------------------

    def lookup(self, user: str, query: dict[str, str]) -> Response:
        code, provision_id = query.get("voucherCode"), query.get("provisionRequestId")
        if code is None and provision_id is None:
            return _error(400, "FORMAT_ERROR", "voucherCode or provisionRequestId is required", None)
        part = self.partitions.get(user, Partition())
        if provision_id is None and code is not None and code in part.vouchers:
            provision_id = part.vouchers[code].provision_id
        step = part.steps.get(provision_id or "")
        if step is None or step.kind != "provision" or code not in (None, step.code):
            return _error(404, "UNABLE_TO_LOCATE_RECORD", "no such voucher", None)
        shown = {"voucher", "product", "amounts", "settlementEntity", "receiver", "thirdPartyIdentifiers", "rrn"}
        return json_response(200, {k: v for k, v in step.response.items() if k in shown})

    def products(self) -> Response:
        return json_response(200, {"products": [p.as_wire(c) for c, p in PRODUCTS[self.config.kind].items()]})

    def ledger_view(self) -> dict[str, Any]:
        """Every accepted step with the state it left, each voucher's state now, and `issued`:
        how many vouchers were ever issued, which tests compare to prove nothing was issued twice."""
        view: dict[str, Any] = {
            "issued": self.issued,
            "provisions": {},
            "redemptions": {},
            "refunds": {},
            "advices": {},
            "vouchers": {},
        }
        for part in self.partitions.values():
            for step_id, step in part.steps.items():
                entry: dict[str, Any] = {"code": step.code, "amount": step.amount, "state": step.state}
                if step.kind == "provision":
                    entry.update(product=step.product, retries=step.retries)
                view[step.kind + "s"][step_id] = entry
            view["advices"].update(part.advices)
            view["vouchers"].update({code: part.steps[v.latest].state for code, v in part.vouchers.items()})
        return view

    def configure(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValueError("expected an object of settings")
        for key, value in changes.items():
            wanted = SETTABLE.get(key)
            if wanted is None:
                raise ValueError(f"{key}: not settable; settable: {', '.join(SETTABLE)}")
            accepted = (int, float) if wanted is float else wanted
            if isinstance(value, bool) or not isinstance(value, accepted):
                raise ValueError(f"{key}: expected {wanted.__name__}")
            if key == "mode" and value not in MODES:
                raise ValueError(f"mode: one of {', '.join(MODES)}")
            if isinstance(value, int | float) and value < 0:
                raise ValueError(f"{key}: may not be negative")
        for key, value in changes.items():
            setattr(self.config, key, value)
        self._mode_changed.set()  # wakes held requests, which look at the mode again
        self._mode_changed = asyncio.Event()
        return asdict(self.config)

    def reset(self) -> None:
        self.partitions.clear()
        self.issued = 0


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _get(raw: dict[str, Any], *names: str) -> Any:
    """A nested field of a request, or None where it or any object on the way is absent."""
    value: Any = raw
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _currency(value: str | int) -> str:
    """A currency code sent as "710" or as 710, as its 3-digit string."""
    return f"{value:03d}" if isinstance(value, int) else value


def _error(status: int, error_type: str, message: str, message_id: str | None, **more: Any) -> Response:
    """SUV's error body. `more` may add `originalId` and `detailMessage`; like `id`, each is left
    out, never null, when it does not apply. `headers` goes with the answer, not in the body."""
    headers = more.pop("headers", None)
    body: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    body.update((k, v) for k, v in {"id": message_id, **more}.items() if v is not None)
    return json_response(status, body, headers)


def _format_error(problems: list[Problem], message_id: str | None) -> Response:
    """Every bad field as `{field, msg, value}`, worded the way conforming SUV servers word it."""
    listed = []
    for problem in problems:
        entry: dict[str, Any] = {"field": problem.where, "msg": _wording(problem)}
        if problem.value is not None:
            entry["value"] = problem.value
        listed.append(entry)
    return _error(400, "FORMAT_ERROR", "Bad formatting.", message_id, detailMessage={"formatErrors": listed})


def _wording(problem: Problem) -> str:
    where = problem.where
    if problem.what == "missing" or (problem.value is None and problem.what.startswith("expected")):
        return f"{where} may not be null"
    if problem.what == "unknown":
        return f"Unrecognized field '{where}'"
    if problem.what == "not a uuid":
        return "UUID must conform to the format 8-4-4-4-12 hexadecimal values"
    return f"{where}: {problem.what}"


def _username(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, _password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if sep and user else None


def _unauthorised() -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="suv"'}
    return _error(401, "AUTHENTICATION_ERROR", "Basic authentication required", None, headers=headers)


def build_app(config: VoucherSimConfig) -> Starlette:
    sim = VoucherSimulator(config)

    def endpoint(call: Call) -> Any:
        async def handle(request: Request) -> Response:
            return await sim.handle(call, request)

        return handle

    def authenticated(answer: Any) -> Any:
        async def handle(request: Request) -> Response:
            fault = await sim.fault_answer(request)
            if fault is not None:
                return fault
            user = _username(request)
            return _unauthorised() if user is None else answer(user, request)

        return handle

    async def health(request: Request) -> Response:
        """Up unless "unavailable" (503) or "hang" (no answer while it lasts)."""
        fault = await sim.fault_answer(request) if config.mode in ("unavailable", "hang") else None
        return fault or Response(b'{"status":"ok"}', media_type="application/json")

    async def ledger(_request: Request) -> Response:
        return Response(_encode(sim.ledger_view()), media_type="application/json")

    async def configure(request: Request) -> Response:
        try:
            changes = _decode(await request.body() or b"{}")
            return Response(_encode(sim.configure(changes)), media_type="application/json")
        except (ValueError, msgspec.DecodeError) as exc:
            return Response(_encode({"error": str(exc)}), 400, media_type="application/json")

    async def reset(_request: Request) -> Response:
        sim.reset()
        return Response(b'{"outcome":"reset"}', media_type="application/json")

    routes = []
    for call in CALLS:
        routes.append(Route(BASE_PATH + call.path, endpoint(call), methods=["POST"]))
        if call.path in ("/vouchers", "/redemptions", "/refunds"):
            routes.append(Route(BASE_PATH + call.path + "/", endpoint(call), methods=["POST"]))
    routes += [
        Route(
            BASE_PATH + "/vouchers",
            authenticated(lambda u, r: sim.lookup(u, dict(r.query_params))),
            methods=["GET"],
        ),
        Route(BASE_PATH + "/products", authenticated(lambda _u, _r: sim.products()), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/_sim/ledger", ledger, methods=["GET"]),
        Route("/_sim/config", configure, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def run(config: VoucherSimConfig, host: str, port: int) -> None:
    run_asgi(build_app(config), host, port)
