"""A voucher provider speaking the Single Use Voucher interface v1, as a real HTTP server.

Two kinds: `full` takes everything the interface has; `stellr` is modelled on Stellr, which
issues vouchers but takes no advices, retries, redemptions or refunds (501). It keeps the
voucher state machine of a conforming server (`xhuma.domain.vouchers`) and a ledger of what it
issued, so tests can prove a lost answer never led to a second voucher. `lose_responses` makes
it issue a voucher and then never answer, as a network failure would."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.domain.vouchers import ALREADY_REVERSED, Event, Refusal, VoucherState, transition
from xhuma.httpserver import run_asgi
from xhuma.validation import InvalidMessage, raw_id
from xhuma.vouchers import operations as ops
from xhuma.vouchers.operations import SuvOperation
from xhuma.vouchers.replies import Reply, decode_strict, error_reply, format_error

KINDS = ("full", "stellr")
MODES = ("normal", "unavailable", "hang", "garbage")
PRODUCTS = {
    "full": {
        "VCH-GIFT-100": ("Gift card R100", 10000, None),
        "VCH-STREAM": ("Streaming credit", None, (5000, 50000)),
        "VCH-AIR-10": ("Airtime R10", 1000, None),
        "VCH-GAME-250": ("Gaming voucher R250", 25000, None),
        "VCH-BUS": ("Bus fare", None, (1000, 20000)),
    },
    "stellr": {
        "STL-GIFT-50": ("Stellr gift R50", 5000, None),
        "STL-GIFT-100": ("Stellr gift R100", 10000, None),
        "STL-STREAM": ("Stellr streaming", None, (5000, 30000)),
    },
}
"""Per kind: provider product code -> (name, fixed amount, or (min, max) in cents)."""
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


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
class Partition:
    """What one Basic-auth user (one client) has done here."""

    provisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: dict[str, VoucherState] = field(default_factory=dict)
    redemptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    advices: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_reversals: dict[str, str] = field(default_factory=dict)
    request_ids: set[str] = field(default_factory=set)


REQUESTS_OF = {Event.CONFIRM_PROVISION: "provisions", Event.REVERSE_PROVISION: "provisions"}
REQUESTS_OF.update({e: "redemptions" for e in (Event.CONFIRM_REDEEM, Event.REVERSE_REDEEM)})
REQUESTS_OF.update({e: "refunds" for e in (Event.CONFIRM_REFUND, Event.REVERSE_REFUND)})


class VoucherSimulator:
    def __init__(self, config: VoucherSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.partitions: dict[str, Partition] = {}
        self.issued = 0

    async def handle(self, operation: SuvOperation, request: Request) -> Response:
        if self.config.mode != "normal":
            interrupted = await self._fault()
            if interrupted is not None:
                return interrupted
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        user = _username(request)
        if user is None:
            return _reply(error_reply(401, "AUTHENTICATION_ERROR", "Unauthorized", None))
        if self.config.kind == "stellr" and operation in ops.CAPABILITY_OF:
            return _reply(error_reply(501, "FUNCTION_NOT_SUPPORTED", "Not supported", None))
        body = await request.body()
        assert operation.request_model is not None
        try:
            message = decode_strict(body, operation.request_model)
        except InvalidMessage as exc:
            return _reply(format_error(exc.errors, raw_id(body)))
        part = self.partitions.setdefault(user, Partition())
        if operation.is_advice:
            return _reply(self._advice(operation, part, message, _decode(body)))
        if message.client.id != user:
            return _reply(error_reply(400, "AUTHENTICATION_ERROR", "Wrong client", message.id))
        raw = _decode(body)
        if operation is ops.RETRY:
            known = part.provisions.get(request.path_params["provisionId"])
            if known is not None:
                known["retries"] += 1
                return _reply(Reply(201, _encode(known["response"])))
            return await self._provision(part, message, raw, request.path_params["provisionId"])
        if message.id in part.request_ids:
            voucher = part.provisions.get(message.id, {}).get("code")
            detail = {"voucher": {"code": voucher}} if voucher else None
            return _reply(error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message.id, detail=detail))
        if operation is ops.PROVISION:
            return await self._provision(part, message, raw, message.id)
        return _reply(self._redeem_or_refund(operation, part, message, raw))

    async def _provision(self, part: Partition, message: Any, raw: dict[str, Any], provision_id: str) -> Response:
        if provision_id in part.early_reversals:
            part.request_ids.add(provision_id)
            return _reply(error_reply(400, "VOUCHER_ALREADY_REVERSED", "Already reversed", message.id))
        code = message.product.product_id if message.product else None
        product = PRODUCTS[self.config.kind].get(code or "")
        if product is None:
            return _reply(error_reply(404, "TRANSACTION_DECLINED", "Unknown product", message.id))
        name, fixed, span = product
        requested = (
            message.amounts.request_amount.amount if message.amounts and message.amounts.request_amount else None
        )
        amount = fixed if fixed is not None else requested
        if (
            amount is None
            or fixed is not None
            and requested not in (None, fixed)
            or span
            and not span[0] <= amount <= span[1]
        ):
            return _reply(error_reply(404, "TRANSACTION_DECLINED", "Amount not allowed", message.id))
        part.request_ids.add(provision_id)
        self.issued += 1
        voucher_code = (message.voucher.code if message.voucher and message.voucher.code else None) or (
            f"{self.rng.randrange(10**15, 10**16)}"
        )
        answer = self._echo(raw)
        answer["voucher"] = {
            "code": voucher_code,
            "serialNumber": f"{self.config.name.upper()}{self.issued:010d}",
            "expiryDate": "2027-12-31T23:59:59.000Z",
            "redeemInstructions": [f"Redeem {name} at any participating store"],
        }
        answer["slipData"] = {"messageLines": [{"text": name}, {"text": f"PIN {voucher_code}"}]}
        part.provisions[provision_id] = {
            "code": voucher_code,
            "amount": amount,
            "product": code,
            "retries": 0,
            "response": answer,
        }
        part.states[voucher_code] = VoucherState.PROVISIONED
        if self.config.lose_responses > 0:
            self.config.lose_responses -= 1
            await asyncio.sleep(3600)  # issued, and the answer never comes
        return _reply(Reply(201, _encode(answer)))

    def _redeem_or_refund(self, operation: SuvOperation, part: Partition, message: Any, raw: dict[str, Any]) -> Reply:
        event = ops.EVENT_OF[operation]
        book = part.redemptions if event is Event.REDEEM else part.refunds
        part.request_ids.add(message.id)
        if message.id in part.early_reversals:
            reason = ALREADY_REVERSED["redemption" if event is Event.REDEEM else "refund"]
            return error_reply(
                400, reason, "Already reversed", message.id, original_id=part.early_reversals[message.id]
            )
        state = part.states.get(message.voucher.code or "")
        if state is None:
            return error_reply(404, "UNABLE_TO_LOCATE_RECORD", "Unknown voucher", message.id)
        moved = transition(state, event)
        if isinstance(moved, Refusal):
            return error_reply(moved.status, moved.error_type, "Refused", message.id)
        part.states[message.voucher.code] = moved
        book[message.id] = {"code": message.voucher.code, "state": "done"}
        answer = self._echo(raw)
        answer["voucher"] = raw["voucher"]
        return Reply(201, _encode(answer))

    def _advice(self, operation: SuvOperation, part: Partition, message: Any, raw: dict[str, Any]) -> Reply:
        assert operation.event is not None
        event = operation.event
        if message.id in part.advices:
            return error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message.id, original_id=message.request_id)
        book: dict[str, dict[str, Any]] = getattr(part, REQUESTS_OF[event])
        original = book.get(message.request_id)
        if original is None:
            if event.is_reversal:
                part.early_reversals[message.request_id] = message.id
                part.advices[message.id] = {"operation": operation.name, "requestId": message.request_id}
            return error_reply(
                404, "UNABLE_TO_LOCATE_RECORD", "Unknown request", message.id, original_id=message.request_id
            )
        state = part.states[original["code"]]
        moved = transition(state, event)
        if isinstance(moved, Refusal):
            original_id = message.request_id if moved.cites_original else None
            return error_reply(moved.status, moved.error_type, "Refused", message.id, original_id=original_id)
        part.states[original["code"]] = moved
        part.advices[message.id] = {"operation": operation.name, "requestId": message.request_id}
        return Reply(202, _encode(raw))

    def _echo(self, raw: dict[str, Any]) -> dict[str, Any]:
        answer = dict(raw)
        answer["thirdPartyIdentifiers"] = [
            *raw.get("thirdPartyIdentifiers", []),
            {"institutionId": self.config.name, "transactionIdentifier": f"{self.config.name}-{self.issued}"},
        ]
        return answer

    async def _fault(self) -> Response | None:
        if self.config.mode == "unavailable":
            return _reply(error_reply(503, "UPSTREAM_UNAVAILABLE", "Down for maintenance", None))
        if self.config.mode == "hang":
            await asyncio.sleep(3600)
        if self.config.mode == "garbage":
            return Response(b"<html>Bad gateway</html>", 200, media_type="text/html")
        return None

    def lookup(self, user: str, query: dict[str, str]) -> Reply:
        part = self.partitions.get(user, Partition())
        for provision_id, provision in part.provisions.items():
            if query.get("provisionRequestId") == provision_id or query.get("voucherCode") == provision["code"]:
                answer = provision["response"]
                return Reply(
                    200, _encode({"voucher": answer["voucher"], "product": {"productId": provision["product"]}})
                )
        return error_reply(404, "UNABLE_TO_LOCATE_RECORD", "Unknown voucher", None)

    def products(self) -> Reply:
        listed = []
        for code, (name, fixed, span) in PRODUCTS[self.config.kind].items():
            product: dict[str, Any] = {"productId": code, "name": name, "isFixedValue": fixed is not None}
            if fixed is not None:
                product["amount"] = {"amount": fixed, "currency": "710"}
            else:
                assert span is not None
                product["minAmount"] = {"amount": span[0], "currency": "710"}
                product["maxAmount"] = {"amount": span[1], "currency": "710"}
            listed.append(product)
        return Reply(200, _encode({"products": listed}))

    def ledger_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "issued": self.issued,
            "provisions": {},
            "advices": {},
            "redemptions": {},
            "refunds": {},
        }
        for part in self.partitions.values():
            for provision_id, p in part.provisions.items():
                view["provisions"][provision_id] = {k: v for k, v in p.items() if k != "response"}
                view["provisions"][provision_id]["state"] = part.states[p["code"]]
            view["advices"].update(part.advices)
            view["redemptions"].update(part.redemptions)
            view["refunds"].update(part.refunds)
        return view

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        for key, value in changes.items():
            if key not in ("latency_ms", "mode", "lose_responses"):
                raise ValueError(f"{key}: not settable")
            if key == "mode" and value not in MODES:
                raise ValueError(f"mode: one of {', '.join(MODES)}")
            setattr(self.config, key, value)
        return asdict(self.config)


def _username(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, _password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if sep and user else None


def _reply(reply: Reply) -> Response:
    return Response(reply.body, reply.status, media_type="application/json")


def build_app(config: VoucherSimConfig) -> Starlette:
    sim = VoucherSimulator(config)

    def endpoint(operation: SuvOperation) -> Any:
        async def handle(request: Request) -> Response:
            return await sim.handle(operation, request)

        return handle

    async def lookup(request: Request) -> Response:
        user = _username(request)
        if user is None:
            return _reply(error_reply(401, "AUTHENTICATION_ERROR", "Unauthorized", None))
        return _reply(sim.lookup(user, dict(request.query_params)))

    async def products(_request: Request) -> Response:
        return _reply(sim.products())

    async def health(_request: Request) -> Response:
        status = 503 if config.mode == "unavailable" else 200
        return Response(
            _encode({"status": "ok" if status == 200 else config.mode}), status, media_type="application/json"
        )

    async def ledger(_request: Request) -> Response:
        return Response(_encode(sim.ledger_view()), media_type="application/json")

    async def configure(request: Request) -> Response:
        try:
            return Response(_encode(sim.configure(_decode(await request.body()))), media_type="application/json")
        except (ValueError, msgspec.DecodeError) as exc:
            return Response(_encode({"error": str(exc)}), 400, media_type="application/json")

    async def reset(_request: Request) -> Response:
        sim.partitions.clear()
        sim.issued = 0
        return Response(b'{"outcome":"reset"}', media_type="application/json")

    routes = []
    for operation in ops.ALL:
        if operation.method == "POST":
            routes.append(Route(ops.BASE_PATH + operation.path, endpoint(operation), methods=["POST"]))
            if operation.path in ("/vouchers", "/redemptions", "/refunds"):
                routes.append(Route(ops.BASE_PATH + operation.path + "/", endpoint(operation), methods=["POST"]))
    routes += [
        Route(ops.BASE_PATH + "/vouchers", lookup, methods=["GET"]),
        Route(ops.BASE_PATH + "/products", products, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/_sim/ledger", ledger, methods=["GET"]),
        Route("/_sim/config", configure, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def run(config: VoucherSimConfig, host: str, port: int) -> None:
    run_asgi(build_app(config), host, port)
