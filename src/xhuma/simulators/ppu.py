"""A provider speaking the Prepaid Utility Service Interface v3, as a real HTTP server.

It follows the public test server's order of checks and scenario meters (TST001-TST011), adds
generated meters (any 11-digit meter id), and keeps a ledger of what it sold so tests can prove
the switch never bought twice. Latency, failures and outages are injected from the command
line or at run time through `POST /_sim/config`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from xhuma.httpserver import run_asgi
from xhuma.simulators.common import (
    TIMESTAMP,
    Either,
    Free,
    Items,
    Obj,
    Problem,
    Text,
    Uuid,
    Whole,
    obj,
    one_of,
    read_json,
    whole,
)
from xhuma.simulators.extracts import Discrepancies, Line, extract
from xhuma.simulators.guard import Guard, GuardConfig, server_context
from xhuma.simulators.tokens import MeterTokenIssuer

DATA = json.loads((Path(__file__).parent / "data" / "ppu_meters.json").read_text())
FLEET = json.loads((Path(__file__).parent / "data" / "fleet.json").read_text())
BASE_PATH = "/prepaidutility/v3"
ECHOED = ("id", "time", "originator", "client", "settlementEntity", "receiver", "thirdPartyIdentifiers")
"""The request's own fields an answer carries back as they came (interface §1.6)."""

# What this provider checks of a request: the fields it reads, and the parties every request names.
PARTY = obj("id name", id=Text(1, 40), name=Text(0, 40))
REQUEST = obj(
    "id time originator client thirdPartyIdentifiers",
    id=Uuid(),
    time=Text(pattern=TIMESTAMP),
    originator=obj("institution terminalId merchant", institution=PARTY, terminalId=Text(8, 8), merchant=Free()),
    client=PARTY,
    thirdPartyIdentifiers=Items(obj("institutionId", institutionId=Text(1))),
    settlementEntity=PARTY,
    receiver=PARTY,
)
METER = obj("meterId", meterId=Text(1, 20))
MONEY = obj("amount currency", amount=Whole(), currency=Either(Text(3, 3), Whole(0, 999)))
ADVICE = obj(
    "id requestId time thirdPartyIdentifiers",
    id=Uuid(),
    requestId=Uuid(),
    time=Text(pattern=TIMESTAMP),
    thirdPartyIdentifiers=Items(obj("institutionId", institutionId=Text(1))),
)
WITH_METER = REQUEST.extended(("meter",), meter=METER)
SALE = WITH_METER.extended(("purchaseAmount",), purchaseAmount=MONEY)


@dataclass(frozen=True)
class Call:
    """One operation of the interface as this provider serves it."""

    path: str
    """After the base path: `{id}` is the message's id, `{requestId}` the advised request's."""
    request_type: str
    """How an error body names the request (`requestType`)."""
    shape: Obj
    capability: str | None = None
    """What the provider must be set up to do to serve it (None: every provider does)."""
    advice: str | None = None
    """For an advice, what the ledger calls it."""


LOOKUP = Call("/meterLookups/{id}", "METER_LOOKUP_REQUEST", WITH_METER)
PURCHASE = Call("/tokenPurchases/{id}", "TOKEN_PURCHASE_REQUEST", SALE)
RETRY = Call("/tokenPurchases/{id}/retry", "TOKEN_PURCHASE_RETRY_REQUEST", SALE, "retry")
CONFIRMATION = Call(
    "/tokenPurchases/{requestId}/confirmations/{id}", "CONFIRMATION_ADVICE", ADVICE, "advice", "confirmation"
)
REVERSAL = Call(
    "/tokenPurchases/{requestId}/reversals/{id}",
    "REVERSAL_ADVICE",
    ADVICE.extended(("reversalReason",), reversalReason=one_of("TIMEOUT CANCELLED RESPONSE_NOT_FINAL")),
    "advice",
    "reversal",
)
TRIAL = Call("/tokenPurchases/{id}/trial", "TOKEN_PURCHASE_TRIAL_REQUEST", SALE, "trial")
REPRINT = Call("/tokenReprints/{id}", "TOKEN_REPRINT_REQUEST", WITH_METER.extended(originalRef=Text()), "reprint")
FAULT_REPORT = Call(
    "/faultReports/{id}",
    "FAULT_REPORT_REQUEST",
    WITH_METER.extended(("contactNumber", "faultType"), contactNumber=Text(0, 20), faultType=Text(1)),
    "fault_report",
)
KEY_CHANGE = Call("/keyChangeTokenRequests/{id}", "KEY_CHANGE_TOKEN_REQUEST", WITH_METER, "key_change")
KEY_CHANGE_CONFIRMATION = Call(
    "/keyChangeTokenRequests/{requestId}/confirmations/{id}",
    "CONFIRMATION_ADVICE",
    ADVICE,
    "key_change",
    "key_change_confirmation",
)
ADVICES = (CONFIRMATION, REVERSAL, KEY_CHANGE_CONFIRMATION)
CALLS = (LOOKUP, PURCHASE, RETRY, TRIAL, REPRINT, FAULT_REPORT, KEY_CHANGE, *ADVICES)
FLEET_AREAS = frozenset(area["code"] for area in FLEET["municipalities"].values())
CURRENCY = "710"
MODES = ("normal", "unavailable", "hang", "garbage")
DISCREPANCIES = ("missing", "extra", "amount_diff", "diff_cents", "time_shift", "shift_seconds", "seed")
_encode = msgspec.json.Encoder().encode


@dataclass
class SimulatorConfig:
    name: str = "sim"
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    tst011_delay: float = 10.0
    seed: int | None = None
    mode: str = "normal"
    municipalities: frozenset[str] | None = None
    """Municipality codes whose generated meters this provider serves (None: all of them)."""
    capabilities: frozenset[str] | None = None
    """What it does beyond lookups and purchases (None: everything); the rest answers 501."""


@dataclass
class Sale:
    """One purchase as the provider recorded it."""

    id: str
    meter_id: str
    amount: int
    response: dict[str, Any]
    retries: int = 0
    payment: dict[str, Any] = field(default_factory=dict)
    """The tenders and payment methods the purchase carried, as received."""
    at_us: int = field(default_factory=lambda: time.time_ns() // 1000)
    """When it was sold, by the provider's clock."""


@dataclass
class Ledger:
    sales: dict[str, Sale] = field(default_factory=dict)
    last_sale_by_meter: dict[str, str] = field(default_factory=dict)
    advices: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    key_changes: set[str] = field(default_factory=set)


def municipality_of(meter_id: str) -> str | None:
    """A generated meter's first three digits name its municipality in the fleet data."""
    found = FLEET["municipalities"].get(meter_id[:3]) if len(meter_id) == 11 and meter_id.isdigit() else None
    return str(found["code"]) if found else None


def _meter(meter_id: str, served: frozenset[str] | None = None) -> dict[str, Any] | None:
    """Scenario data of a test meter, or generated data for an 11-digit one this provider
    serves (a fleet provider serves only its municipalities' meters)."""
    if served is not None and meter_id not in DATA["meters"] and municipality_of(meter_id) not in served:
        return None
    if meter_id in DATA["meters"]:
        return {
            **DATA["meters"][meter_id],
            "min": DATA["meters"][meter_id]["amount"],
            "max": DATA["meters"][meter_id]["amount"],
        }
    if len(meter_id) == 11 and meter_id.isdigit():
        return {"generated": True, "min": 100, "max": 500_000}
    return None


def _customer(meter_id: str) -> dict[str, Any]:
    if meter_id in DATA["meters"]:
        return dict(DATA["customer"])
    digest = hashlib.sha256(meter_id.encode()).digest()
    first = ["Ayanda", "Pieter", "Lerato", "Johan", "Naledi", "Sipho", "Anele", "Maria"][digest[0] % 8]
    last = ["Dlamini", "van Wyk", "Mokoena", "Naidoo", "Botha", "Khumalo", "Pillay", "Smith"][digest[1] % 8]
    return {"firstName": first, "lastName": last, "address": f"{digest[2] % 200 + 1} Main Road"}


def _utility(meter_id: str) -> dict[str, Any]:
    if meter_id in DATA["meters"]:
        return dict(DATA["utility"])
    area = FLEET["municipalities"].get(meter_id[:3])
    if area is None:
        town = ["Mangaung", "eThekwini", "Tshwane", "Ekurhuleni", "Buffalo City", "Polokwane"][
            hashlib.sha256(meter_id.encode()).digest()[3] % 6
        ]
        return {"name": f"{town} Electricity", "vatRegNum": "4100000001"}
    return {"name": f"{area['name']} {area['utility'].title()}", "clientId": area["code"], "vatRegNum": "4100000001"}


def _amount(value: int, tax: int | None = None, *, rate: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"amount": value, "currency": CURRENCY}
    if tax is not None:
        out.update(tax=tax, taxType="VAT", taxRate=rate if rate is not None else 15.0)
    return out


def _amount_of(raw: dict[str, Any]) -> int:
    """The purchase amount of a request already checked to carry one."""
    amount = whole(raw["purchaseAmount"]["amount"])
    assert amount is not None
    return amount


def _field_error(problem: Problem) -> dict[str, Any]:
    """A format problem as this provider lists it in `detailMessage`."""
    error = {"missing": "is required", "not a uuid": "is not a UUID (8-4-4-4-12 hex)"}.get(problem.what, problem.what)
    listed: dict[str, Any] = {"field": problem.where, "error": error}
    if problem.value is not None:
        listed["invalidValue"] = problem.value
    return listed


def _meter_block(meter_id: str) -> dict[str, Any]:
    return {
        "meterId": meter_id,
        # The supply group code names the utility; a generated meter's comes from its prefix.
        "supplyGroupCode": f"{meter_id[:3]}001" if len(meter_id) == 11 and meter_id.isdigit() else "000001",
        "keyRevisionNum": "1",
        "tariffIndex": "01",
        "tokenTechCode": "02",
    }


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.tokens = MeterTokenIssuer()
        self.ledger = Ledger()
        self._mode_changed = asyncio.Event()
        self._refs = 0

    def _ref(self) -> str:
        self._refs += 1
        return f"{self.config.name.upper()}{self._refs:08d}"

    # --- the interface ----------------------------------------------------------------------

    async def handle(self, call: Call, request: Request) -> Response:
        if self.config.mode != "normal":
            interrupted = await self.fault_answer()
            if interrupted is not None:
                return interrupted
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000 * self.rng.uniform(0.5, 1.5))
        served = self.config.capabilities
        if call.capability is not None and served is not None and call.capability not in served:
            return self._error(501, "FUNCTION_NOT_SUPPORTED", "Not supported", call, None)
        raw, unreadable = read_json(await request.body())
        problems = [Problem("$", unreadable)] if unreadable else call.shape.problems(raw, "", False)
        if problems:
            listed = [_field_error(p) for p in problems]
            return self._error(400, "FORMAT_ERROR", "Bad format", call, None, listed)
        path = request.path_params
        message_id: str = raw["id"]
        if call is not RETRY and path.get("id") != message_id:
            return self._error(400, "FORMAT_ERROR", "Path id mismatch", call, message_id)
        if call.advice is not None:
            return self._advice(call, raw)
        if call is RETRY:
            return await self._retry(path["id"], raw)
        seen = self.ledger.seen.setdefault(call.path, set())
        # A retry for an id never seen sells under that id, so the original arriving after it
        # is a duplicate, as a real provider answers: one purchase id never sells twice.
        if message_id in seen or (call is PURCHASE and message_id in self.ledger.sales):
            return self._error(400, "DUPLICATE_RECORD", "Duplicate id", call, message_id)
        seen.add(message_id)
        meter_id: str = raw["meter"]["meterId"]
        if call is REPRINT:
            return self._reprint(meter_id, raw)
        meter = _meter(meter_id, self.config.municipalities)
        if meter is None:
            return self._error(400, "UNKNOWN_METER_ID", "Unknown meter", call, message_id)
        if call is LOOKUP:
            return self._json(201, self._lookup(meter_id, meter, raw))
        if call is FAULT_REPORT:
            answer = {
                "reference": f"{raw['time']}{raw['originator']['terminalId']}",
                "description": "Fault logged with the utility",
            }
            return self._json(201, self._echo(raw, answer))
        if call is KEY_CHANGE:
            self.ledger.key_changes.add(message_id)
            tokens = [self._token(meter_id, {"tokenType": "KC", "units": 0, "amount": 0}) for _ in range(2)]
            return self._json(201, self._echo(raw, {"meter": _meter_block(meter_id), "tokens": tokens}))
        amount = _amount_of(raw)
        if not meter["min"] <= amount <= meter["max"]:
            return self._error(400, "INVALID_AMOUNT", "Invalid amount", call, message_id)
        response = self._purchase_response(meter_id, meter, amount, trial=call is TRIAL)
        if call is TRIAL:
            return self._json(200, self._echo(raw, response))
        sale = self._record(message_id, meter_id, amount, response)
        sale.payment = {name: raw[name] for name in ("tenders", "paymentMethods") if name in raw}
        if meter.get("timesOut"):
            await asyncio.sleep(self.config.tst011_delay)
            return self._error(504, "UPSTREAM_UNAVAILABLE", "Timeout", call, message_id)
        if self.config.failure_rate and self.rng.random() < self.config.failure_rate:
            return self._error(500, "GENERAL_ERROR", "Injected failure", call, message_id)
        return self._json(201, self._echo(raw, response))

    async def _retry(self, original_id: str, raw: dict[str, Any]) -> Response:
        sale = self.ledger.sales.get(original_id)
        if sale is None:
            meter_id: str = raw["meter"]["meterId"]
            meter = _meter(meter_id, self.config.municipalities)
            if meter is None:
                return self._error(400, "UNKNOWN_METER_ID", "Unknown meter", RETRY, raw["id"])
            amount = _amount_of(raw)
            if not meter["min"] <= amount <= meter["max"]:
                return self._error(400, "INVALID_AMOUNT", "Invalid amount", RETRY, raw["id"])
            sale = self._record(original_id, meter_id, amount, self._purchase_response(meter_id, meter, amount))
        sale.retries += 1
        return self._json(201, self._echo(raw, sale.response))

    def _advice(self, call: Call, raw: dict[str, Any]) -> Response:
        advice_id, request_id = raw["id"], raw["requestId"]
        known = request_id in (self.ledger.key_changes if call is KEY_CHANGE_CONFIRMATION else self.ledger.sales)
        if not known:
            return self._error(
                404, "UNABLE_TO_LOCATE_RECORD", "Unknown request", call, advice_id, original_id=request_id
            )
        if advice_id in self.ledger.advices:
            self.ledger.advices[advice_id]["deliveries"] += 1  # so tests can see a repeat
            return self._error(400, "DUPLICATE_RECORD", "Duplicate id", call, advice_id, original_id=request_id)
        self.ledger.advices[advice_id] = {
            "id": advice_id,
            "kind": call.advice,
            "requestId": request_id,
            "deliveries": 1,
            **{name: raw[name] for name in ("tenders",) if name in raw},
        }
        return self._json(202, raw)

    def _reprint(self, meter_id: str, raw: dict[str, Any]) -> Response:
        sale_id = raw.get("originalRef") or self.ledger.last_sale_by_meter.get(meter_id)
        sale = self.ledger.sales.get(sale_id or "")
        if sale is None or sale.meter_id != meter_id:
            return self._error(404, "UNABLE_TO_LOCATE_RECORD", "No token to reprint", REPRINT, raw["id"])
        return self._json(200, self._echo(raw, sale.response))

    # --- building answers -------------------------------------------------------------------

    def _lookup(self, meter_id: str, meter: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "meter": _meter_block(meter_id),
            "customer": _customer(meter_id),
            "utility": _utility(meter_id),
            "minAmount": _amount(meter["min"]),
            "maxAmount": _amount(meter["max"]),
        }
        if meter.get("bsstDue"):
            answer["bsstDue"] = True
        return self._echo(raw, answer)

    def _purchase_response(
        self, meter_id: str, meter: dict[str, Any], amount: int, *, trial: bool = False
    ) -> dict[str, Any]:
        if meter.get("generated"):
            excl = round(amount / 1.15)
            templates: list[dict[str, Any]] = [
                {"tokenType": "STD", "units": round(excl / 250, 1), "amount": excl, "tax": amount - excl}
            ]
        else:
            templates = meter["tokens"]
        response: dict[str, Any] = {
            "meter": _meter_block(meter_id),
            "customer": _customer(meter_id),
            "utility": _utility(meter_id),
            "purchaseTotal": _amount(sum(t["amount"] for t in templates)),
            "taxTotal": _amount(sum(t.get("tax") or 0 for t in templates)),
        }
        if not trial:
            response["tokens"] = [self._token(meter_id, t) for t in templates]
        for key in ("debtRecoveryCharges", "serviceCharges"):
            if key in meter:
                response[key] = [self._charge(c) for c in meter[key]]
        return response

    def _token(self, meter_id: str, template: dict[str, Any]) -> dict[str, Any]:
        token: dict[str, Any] = {
            "tokenType": template["tokenType"],
            "units": template["units"],
            "amount": _amount(template["amount"], template.get("tax"), rate=15.0)
            if "tax" in template
            else {"amount": template["amount"], "currency": CURRENCY},
            "token": self.tokens.issue(
                meter_id, template["units"], self.rng, subclass=3 if template["tokenType"] == "KC" else 0
            ),
        }
        for key in ("receiptNum", "tariffCalc"):
            if key in template:
                token[key] = template[key]
        return token

    @staticmethod
    def _charge(template: dict[str, Any]) -> dict[str, Any]:
        charge: dict[str, Any] = {
            "amount": _amount(template["amount"], template["tax"]),
            "description": template["description"],
        }
        if "balance" in template:
            charge["balance"] = _amount(template["balance"])
        if "receiptNum" in template:
            charge["receiptNum"] = template["receiptNum"]
        return charge

    def _record(self, sale_id: str, meter_id: str, amount: int, response: dict[str, Any]) -> Sale:
        sale = Sale(sale_id, meter_id, amount, response)
        self.ledger.sales[sale_id] = sale
        self.ledger.last_sale_by_meter[meter_id] = sale_id
        return sale

    def _echo(self, raw: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """The interface's echo rule: the request's own fields come back as they were sent."""
        body = {name: raw[name] for name in ECHOED if name in raw}
        body["thirdPartyIdentifiers"] = [
            *raw.get("thirdPartyIdentifiers", []),
            {"institutionId": self.config.name, "transactionIdentifier": self._ref()},
        ]
        body.update(answer)
        return body

    @staticmethod
    def _json(status: int, body: Any) -> Response:
        return Response(_encode(body), status, media_type="application/json")

    @staticmethod
    def _error(
        status: int,
        error_type: str,
        message: str,
        call: Call,
        message_id: str | None,
        detail: Any = None,
        original_id: str | None = None,
    ) -> Response:
        """The interface's ErrorDetail; fields that do not apply are left out."""
        body: dict[str, Any] = {"errorType": error_type, "errorMessage": message, "requestType": call.request_type}
        for name, value in (("id", message_id), ("originalId", original_id), ("detailMessage", detail)):
            if value is not None:
                body[name] = value
        return Response(_encode(body), status, media_type="application/json")

    async def fault_answer(self) -> Response | None:
        mode = self.config.mode
        if mode == "unavailable":
            return Response(
                b'{"errorType":"UPSTREAM_UNAVAILABLE","errorMessage":"Unavailable"}', 503, media_type="application/json"
            )
        if mode == "garbage":
            return Response(b"<html>not what you asked for", 200, media_type="text/html")
        if mode == "hang":
            while self.config.mode == "hang":
                self._mode_changed.clear()
                await self._mode_changed.wait()
            return None
        return None

    # --- administration ---------------------------------------------------------------------

    def ledger_view(self) -> dict[str, Any]:
        return {
            "purchases": [
                {
                    "id": s.id,
                    "meterId": s.meter_id,
                    "amount": s.amount,
                    "retries": s.retries,
                    "tokens": [t["token"] for t in s.response.get("tokens", [])],
                    **s.payment,
                }
                for s in self.ledger.sales.values()
            ],
            "advices": list(self.ledger.advices.values()),
        }

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        names = {
            "latencyMs": "latency_ms",
            "failureRate": "failure_rate",
            "tst011Delay": "tst011_delay",
            "mode": "mode",
        }
        unknown = set(changes) - set(names) - {"municipalities"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known {sorted([*names, 'municipalities'])}")
        if "mode" in changes and changes["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        coverage = changes.pop("municipalities", self.config.municipalities)
        if coverage is not None and not (
            isinstance(coverage, list | frozenset) and all(c in FLEET_AREAS for c in coverage)
        ):
            raise ValueError(f"municipalities must be a list of codes from {sorted(FLEET_AREAS)}")
        self.config.municipalities = None if coverage is None else frozenset(coverage)
        for key, value in changes.items():
            setattr(self.config, names[key], value if key == "mode" else float(value))
        self._mode_changed.set()
        return asdict(self.config)


def build_app(config: SimulatorConfig) -> Starlette:
    simulator = Simulator(config)

    def endpoint(call: Call) -> Any:
        async def handle(request: Request) -> Response:
            return await simulator.handle(call, request)

        return handle

    async def health(_request: Request) -> Response:
        """Up unless switched to "unavailable" (503) or "hang" (no answer while it lasts)."""
        if config.mode in ("unavailable", "hang"):
            interrupted = await simulator.fault_answer()
            if interrupted is not None:
                return interrupted
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def ledger(_request: Request) -> Response:
        return Response(_encode(simulator.ledger_view()), media_type="application/json")

    async def configure(request: Request) -> Response:
        try:
            changes = json.loads(await request.body() or b"{}")
            return Response(_encode(simulator.configure(changes)), media_type="application/json")
        except (ValueError, TypeError) as exc:
            return Response(_encode({"error": str(exc)}), 400, media_type="application/json")

    async def daily_extract(request: Request) -> Response:
        """`GET /_sim/extract?date=YYYY-MM-DD&tz=UTC&missing=N&extra=N&amount_diff=N&diff_cents=C
        &time_shift=N&shift_seconds=S&seed=S`: the day's sales not reversed, as CSV; the header
        X-Sim-Injected says which references got which discrepancy."""
        query = request.query_params
        try:
            day = date.fromisoformat(query["date"])
            zone = ZoneInfo(query.get("tz", "UTC"))
            numbers = {name: int(query[name]) for name in DISCREPANCIES if name in query}
        except (KeyError, ValueError) as exc:
            return Response(_encode({"error": f"date=YYYY-MM-DD and whole numbers, please ({exc})"}), 400)
        reversed_ids = {a["requestId"] for a in simulator.ledger.advices.values() if a["kind"] == "reversal"}
        sales = [Line(s.id, s.amount, s.at_us, "purchase", s.meter_id) for s in simulator.ledger.sales.values()]
        made = extract(
            config.name, [s for s in sales if s.reference not in reversed_ids], day, zone, Discrepancies(**numbers)
        )
        headers = {
            "Content-Disposition": f'attachment; filename="{made.name}"',
            "X-Sim-Injected": json.dumps(made.injected),
        }
        return Response(made.text, media_type="text/csv", headers=headers)

    async def reset(_request: Request) -> Response:
        simulator.ledger = Ledger()
        return Response(b'{"reset":true}', media_type="application/json")

    routes = [Route(BASE_PATH + call.path, endpoint(call), methods=["POST"]) for call in CALLS]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/_sim/ledger", ledger, methods=["GET"]),
        Route("/_sim/config", configure, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/extract", daily_extract, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = simulator
    return app


def run(config: SimulatorConfig, host: str, port: int, guard: GuardConfig | None = None) -> None:
    """Serve the simulator; with `guard`, behind its TLS, bearer-token and signature checks."""
    app: Any = build_app(config)
    if guard is not None:
        app = Guard(app, guard, BASE_PATH)
    run_asgi(app, host, port, context=server_context(guard) if guard else None)


def fleet_configs(seed: int | None = None) -> list[SimulatorConfig]:
    """The providers of the fleet data file, each with its coverage, capabilities and latency."""
    return [
        SimulatorConfig(
            name=p["name"],
            latency_ms=float(p.get("latencyMs", 0)),
            failure_rate=float(p.get("errorRate", 0)),
            tst011_delay=10.0,
            seed=None if seed is None else seed + n,
            municipalities=frozenset(p["municipalities"]),
            capabilities=frozenset(p["capabilities"]),
        )
        for n, p in enumerate(FLEET["providers"])
    ]


def build_fleet_app(configs: list[SimulatorConfig]) -> Starlette:
    """Every provider of the fleet under its own base path, e.g. /ipay/prepaidutility/v3/..."""

    async def health(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    routes: list[Any] = [Route("/health", health, methods=["GET"])]
    routes += [Mount(f"/{config.name}", app=build_app(config)) for config in configs]
    return Starlette(routes=routes)


def fleet_switch_config(configs: list[SimulatorConfig], base_url: str) -> str:
    """The `[[providers]]` of a switch configuration that talks to this fleet."""
    blocks = []
    for config in configs:
        capabilities = ", ".join(f'"{c}"' for c in sorted(config.capabilities or ()))
        blocks.append(
            f'[[providers]]\nname = "{config.name}"\nkind = "ppu_v3"\nbase_url = "{base_url}/{config.name}"\n'
            f'health_url = "{base_url}/{config.name}/health"\n'
            f"capabilities = [{capabilities}]\n"
        )
    return "\n".join(blocks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A simulated PPU v3 provider.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="sim")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--tst011-delay", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    run(
        SimulatorConfig(args.name, args.latency_ms, args.failure_rate, args.tst011_delay, args.seed),
        args.host,
        args.port,
    )
