"""A voucher provider speaking the Single Use Voucher interface v1, as a real HTTP server.

Two kinds: `full` takes everything the interface has; `stellr` is modelled on Stellr, which
issues vouchers but takes no advices, retries, redemptions or refunds (501). It follows the
rules of a conforming voucher server (reference §6.1, §6.2), judging every step with the one
state machine the switch uses (`xhuma.domain.vouchers`), and keeps a ledger of what it issued
so tests can prove a lost answer never led to a second voucher. Faults are injected from the
command line or at run time through `POST /_sim/config`; `lose_responses` makes it issue a
voucher and then never answer, as a network failure would."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.domain.vouchers import ALREADY_REVERSED, Refusal, VoucherState, transition
from xhuma.httpserver import run_asgi
from xhuma.validation import FieldError, InvalidMessage, raw_id
from xhuma.vouchers import operations as ops
from xhuma.vouchers.operations import REQUEST_NAME, SuvOperation
from xhuma.vouchers.replies import Reply, decode_strict, error_reply, format_error
from xhuma.vouchers.wire import currency_code

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
    state: VoucherState
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

    async def handle(self, operation: SuvOperation, request: Request) -> Response:
        fault = await self.fault_answer(request)
        if fault is not None:
            return fault
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        user = _username(request)
        if user is None:
            return _unauthorised()
        body = await request.body()
        if self.config.kind == "stellr" and operation in ops.CAPABILITY_OF:
            return _response(
                error_reply(501, "FUNCTION_NOT_SUPPORTED", f"{operation.name} is not supported", raw_id(body))
            )
        assert operation.request_model is not None
        try:
            message = decode_strict(body, operation.request_model)
        except InvalidMessage as exc:
            return _response(format_error(exc.errors, raw_id(body)))
        raw: dict[str, Any] = _decode(body)
        part = self.partitions.setdefault(user, Partition())
        if operation.is_advice:
            return _response(self._advice(operation, part, message, raw))
        if message.client.id != user:
            reply = error_reply(
                400, "AUTHENTICATION_ERROR", f"user {user} may not act as client {message.client.id}", message.id
            )
            return _response(reply)
        if operation is ops.RETRY:
            provision_id = request.path_params["provisionId"]
            known = part.steps.get(provision_id)
            if known is not None and known.kind == "provision":
                # The voucher it issued, whatever happened to it since: a retry retrieves.
                known.retries += 1
                return _response(Reply(201, _encode(known.response)))
            return await self._provision(part, provision_id, message, raw, request)
        if message.id in part.used_ids:
            step = part.steps.get(message.id)
            detail = {"voucher": {"code": step.code}} if step is not None and step.kind == "provision" else None
            return _response(error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message.id, detail=detail))
        if operation is ops.PROVISION:
            return await self._provision(part, message.id, message, raw, request)
        return _response(self._redeem_or_refund(operation, part, message, raw))

    async def _provision(
        self, part: Partition, provision_id: str, message: Any, raw: dict[str, Any], request: Request
    ) -> Response:
        if ("provision", provision_id) in part.early_reversals:
            part.used_ids.add(provision_id)
            return _response(error_reply(400, ALREADY_REVERSED["provision"], "Already reversed", message.id))
        chosen = self._product(message)
        if isinstance(chosen, Reply):
            return _response(chosen)
        product_code, amount = chosen
        supplied = message.voucher.code if message.voucher is not None else None
        if supplied is not None and supplied in part.vouchers:
            detail = {"voucher": {"code": supplied}}
            return _response(
                error_reply(400, "DUPLICATE_RECORD", "Voucher code already issued", message.id, detail=detail)
            )
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
        part.steps[provision_id] = Step("provision", code, VoucherState.PROVISIONED, amount, answer, product_code)
        part.vouchers[code] = Issued(provision_id, amount, latest=provision_id)
        if self.config.lose_responses > 0:
            self.config.lose_responses -= 1
            await self._hold(request, until_mode_changes=False)  # issued, and the answer never comes
        return _response(Reply(201, _encode(answer)))

    def _product(self, message: Any) -> tuple[str, int] | Reply:
        """The product and amount to issue, or the provider's hard decline (404, §5.2)."""
        code = message.product.product_id if message.product is not None else None
        if code is None:
            return format_error([FieldError(field="product.productId", error="is required")], message.id)
        product = PRODUCTS[self.config.kind].get(code)
        if product is None:
            return error_reply(404, "TRANSACTION_DECLINED", f"unknown product {code}", message.id)
        requested = message.amounts.request_amount if message.amounts is not None else None
        if requested is not None and currency_code(requested.currency) != CURRENCY:
            return error_reply(
                404, "TRANSACTION_DECLINED", f"product {code} is sold in currency {CURRENCY} only", message.id
            )
        amount = product.amount_for(code, None if requested is None else requested.amount)
        if isinstance(amount, str):
            return error_reply(404, "TRANSACTION_DECLINED", amount, message.id)
        return code, amount

    def _new_code(self, part: Partition) -> str:
        while True:
            code = str(self.rng.randrange(10**15, 10**16))
            if code not in part.vouchers:
                return code

    def _redeem_or_refund(self, operation: SuvOperation, part: Partition, message: Any, raw: dict[str, Any]) -> Reply:
        assert operation.kind is not None
        kind = REQUEST_NAME[operation.kind]
        code = message.voucher.code
        if code is None:
            return format_error([FieldError(field="voucher.code", error="is required")], message.id)
        part.used_ids.add(message.id)
        reversal_id = part.early_reversals.get((kind, message.id))
        if reversal_id is not None:
            return error_reply(400, ALREADY_REVERSED[kind], "Already reversed", message.id, original_id=reversal_id)
        issued = part.vouchers.get(code)
        if issued is None:
            return error_reply(404, "UNABLE_TO_LOCATE_RECORD", f"unknown voucher {code}", message.id)
        moved = transition(part.steps[issued.latest].state, ops.EVENT_OF[operation])
        if isinstance(moved, Refusal):
            return error_reply(moved.status, moved.error_type, _message(moved), message.id)
        answer = self._echo(raw, f"Voucher {kind}", code, issued.amount)
        part.steps[message.id] = Step(kind, code, moved, issued.amount, answer)
        issued.latest = message.id
        return Reply(201, _encode(answer))

    def _advice(self, operation: SuvOperation, part: Partition, message: Any, raw: dict[str, Any]) -> Reply:
        assert operation.event is not None and operation.request_kind is not None
        event, kind = operation.event, REQUEST_NAME[operation.request_kind]
        if message.id in part.advices:
            return error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message.id, original_id=message.request_id)
        step = part.steps.get(message.request_id)
        if step is None or step.kind != kind:
            if event.is_reversal:
                part.early_reversals[(kind, message.request_id)] = message.id
                part.advices[message.id] = {"operation": operation.name, "requestId": message.request_id, "status": 404}
            return error_reply(
                404,
                "UNABLE_TO_LOCATE_RECORD",
                f"unknown {kind} {message.request_id}",
                message.id,
                original_id=message.request_id,
            )
        moved = transition(step.state, event)
        if isinstance(moved, Refusal):
            original_id = message.request_id if moved.cites_original else None
            return error_reply(moved.status, moved.error_type, _message(moved), message.id, original_id=original_id)
        step.state = moved
        part.advices[message.id] = {"operation": operation.name, "requestId": message.request_id, "status": 202}
        return Reply(202, _encode(raw))

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
            return _response(error_reply(503, "UPSTREAM_UNAVAILABLE", "down for maintenance", None))
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

    def lookup(self, user: str, query: dict[str, str]) -> Reply:
        code, provision_id = query.get("voucherCode"), query.get("provisionRequestId")
        if code is None and provision_id is None:
            return error_reply(400, "FORMAT_ERROR", "voucherCode or provisionRequestId is required", None)
        part = self.partitions.get(user, Partition())
        if provision_id is None and code is not None and code in part.vouchers:
            provision_id = part.vouchers[code].provision_id
        step = part.steps.get(provision_id or "")
        if step is None or step.kind != "provision" or code not in (None, step.code):
            return error_reply(404, "UNABLE_TO_LOCATE_RECORD", "no such voucher", None)
        shown = {"voucher", "product", "amounts", "settlementEntity", "receiver", "thirdPartyIdentifiers", "rrn"}
        return Reply(200, _encode({k: v for k, v in step.response.items() if k in shown}))

    def products(self) -> Reply:
        return Reply(200, _encode({"products": [p.as_wire(c) for c, p in PRODUCTS[self.config.kind].items()]}))

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


def _message(refusal: Refusal) -> str:
    return refusal.error_type.replace("_", " ").capitalize()


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
    reply = error_reply(401, "AUTHENTICATION_ERROR", "Basic authentication required", None)
    return Response(reply.body, 401, {"WWW-Authenticate": 'Basic realm="suv"'}, media_type="application/json")


def _response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers, media_type="application/json")


def build_app(config: VoucherSimConfig) -> Starlette:
    sim = VoucherSimulator(config)

    def endpoint(operation: SuvOperation) -> Any:
        async def handle(request: Request) -> Response:
            return await sim.handle(operation, request)

        return handle

    def authenticated(answer: Any) -> Any:
        async def handle(request: Request) -> Response:
            fault = await sim.fault_answer(request)
            if fault is not None:
                return fault
            user = _username(request)
            return _unauthorised() if user is None else _response(answer(user, request))

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
    for operation in ops.ALL:
        if operation.method == "POST":
            routes.append(Route(ops.BASE_PATH + operation.path, endpoint(operation), methods=["POST"]))
            if operation.path in ("/vouchers", "/redemptions", "/refunds"):
                routes.append(Route(ops.BASE_PATH + operation.path + "/", endpoint(operation), methods=["POST"]))
    routes += [
        Route(
            ops.BASE_PATH + "/vouchers",
            authenticated(lambda u, r: sim.lookup(u, dict(r.query_params))),
            methods=["GET"],
        ),
        Route(ops.BASE_PATH + "/products", authenticated(lambda _u, _r: sim.products()), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/_sim/ledger", ledger, methods=["GET"]),
        Route("/_sim/config", configure, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def run(config: VoucherSimConfig, host: str, port: int) -> None:
    run_asgi(build_app(config), host, port)
