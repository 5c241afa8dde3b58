"""A homing bank, as a real HTTP server: it takes xhuma's inbound CreditTransfer, DirectDebit
and PaymentReturn (system error correction) messages, answers 202 (or, at configurable rates,
a 503 NACK, or nothing at all until the sender gives up), decides to book or reject each with
a realistic reason, and sends its PaymentStatusReport back to xhuma, repeating it until xhuma
answers 202.

`silent_rate` is the share of acknowledged messages the bank never reports on (xhuma raises a
reconciliation exception when its window closes)."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.httpserver import run_asgi
from xhuma.simulators.guard import SIGNATURE_HEADER, sign_body

CREDIT_PATH = "/inbound/credit-transfer"
DEBIT_PATH = "/inbound/direct-debit"
RETURN_PATH = "/inbound/payment-return"
"""Where the bank takes xhuma's messages, as its own interface documents them."""
REPORT_PATHS = {
    "credit": "/inbound/credit-transfer-response",
    "debit": "/inbound/direct-debit-response",
    "return": "/inbound/payment-return-response",
}
REJECTIONS = {
    "return": [("AC04", "Closed account number"), ("AM04", "Insufficient funds")],
    "credit": [
        ("AC01", "Incorrect account number"),
        ("AC04", "Closed account number"),
        ("MD07", "End customer deceased"),
    ],
    "debit": [("AM04", "Insufficient funds"), ("AC06", "Blocked account"), ("MD01", "No mandate")],
}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass
class BankConfig:
    xhuma_url: str = "http://127.0.0.1:8080"
    username: str = "bank"
    password: str = "bank-pw"
    nack_rate: float = 0.0
    """Share of deliveries answered 503 (nothing booked)."""
    hang_rate: float = 0.0
    """Share of deliveries never answered at all (nothing booked)."""
    reject_rate: float = 0.0
    silent_rate: float = 0.0
    report_delay: float = 0.05
    seed: int | None = None
    signing_key: Path | None = None
    """Sign each status report (`x-jwt-signature`) with this PEM private key."""


@dataclass
class Ledger:
    received: dict[str, int] = field(default_factory=dict)
    """Deliveries per message id, NACKed ones included."""
    booked: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)
    """Status reports sent per message id (repeats included)."""


class Bank:
    def __init__(self, config: BankConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.ledger = Ledger()
        self._tasks: set[asyncio.Task[None]] = set()

    async def receive(self, request: Request, kind: str) -> Response:
        body = _decode(await request.body())
        message_id = body["messageIdentifiers"]["messageIdentification"]
        self.ledger.received[message_id] = self.ledger.received.get(message_id, 0) + 1
        roll = self.rng.random()
        if roll < self.config.hang_rate:
            await asyncio.sleep(3600)
        if roll < self.config.hang_rate + self.config.nack_rate:
            return Response(b'{"message":"try again later"}', 503, media_type="application/json")
        if message_id not in self.ledger.booked:
            rejected = self.rng.random() < self.config.reject_rate
            reason = self.rng.choice(REJECTIONS[kind]) if rejected else None
            self.ledger.booked[message_id] = {
                "kind": kind,
                "outcome": "REJECTED" if rejected else "APPROVED",
                "reason": reason[0] if reason else None,
            }
            if self.rng.random() >= self.config.silent_rate:
                task = asyncio.create_task(self._report(kind, body, reason))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return Response(status_code=202)

    async def _report(self, kind: str, original: dict[str, Any], reason: tuple[str, str] | None) -> None:
        await asyncio.sleep(self.config.report_delay)
        report: dict[str, Any] = {
            "schema": "PaymentStatusReport",
            "messageIdentifiers": {
                "messageIdentification": f"BK{uuid.uuid4().hex[:20]}",
                "creationDateTime": datetime.now(UTC).isoformat(),
            },
            "originalMessageIdentifiers": original["messageIdentifiers"],
            "transactionIdentifiers": original["transactionIdentifiers"],
            "paymentScheme": {"schema": "ZA_EFT"},
            "status": {"outcome": "REJECTED" if reason else "APPROVED"},
        }
        if reason:
            report["status"]["reasonInfo"] = [
                {"reason": {"schema": "CODE", "value": reason[0]}, "description": reason[1]}
            ]
        path = REPORT_PATHS[kind]
        secret = base64.b64encode(f"{self.config.username}:{self.config.password}".encode()).decode()
        message_id = original["messageIdentifiers"]["messageIdentification"]
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {secret}"}) as session:
            for attempt in range(200):
                self.ledger.reports[message_id] = self.ledger.reports.get(message_id, 0) + 1
                body = _encode(report)
                headers = {"Content-Type": "application/json"}
                if self.config.signing_key is not None:
                    headers[SIGNATURE_HEADER.decode()] = sign_body(self.config.signing_key, body)
                try:
                    async with session.post(self.config.xhuma_url + path, data=body, headers=headers) as answer:
                        if answer.status == 202:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(attempt, 5)))


def build_app(config: BankConfig) -> Starlette:
    bank = Bank(config)

    async def credit(request: Request) -> Response:
        return await bank.receive(request, "credit")

    async def debit(request: Request) -> Response:
        return await bank.receive(request, "debit")

    async def payment_return(request: Request) -> Response:
        return await bank.receive(request, "return")

    async def health(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def ledger(_request: Request) -> Response:
        return Response(_encode(asdict(bank.ledger)), media_type="application/json")

    async def configure(request: Request) -> Response:
        for key, value in _decode(await request.body()).items():
            if key not in ("nack_rate", "hang_rate", "reject_rate", "silent_rate", "report_delay"):
                return Response(_encode({"error": f"{key}: not settable"}), 400, media_type="application/json")
            setattr(config, key, float(value))
        return Response(_encode(asdict(config)), media_type="application/json")

    return Starlette(
        routes=[
            Route(CREDIT_PATH, credit, methods=["POST"]),
            Route(DEBIT_PATH, debit, methods=["POST"]),
            Route(RETURN_PATH, payment_return, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/_sim/ledger", ledger, methods=["GET"]),
            Route("/_sim/config", configure, methods=["POST"]),
        ]
    )


def run(config: BankConfig, host: str, port: int) -> None:
    run_asgi(build_app(config), host, port)
