"""In-process fake providers behind the real adapters: `prepare` stays the real adapter's, only
`send` goes to a fake that acts by the fault plan and keeps a ledger of what it sold and which
advices it received, for the checker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tests.sim.faults import FaultPlan
from xhuma.domain.outcomes import Outcome, classify_status
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall
from xhuma.providers.http import _read_object
from xhuma.providers.ppu_v3 import PpuV3Adapter
from xhuma.providers.suv_v1 import SuvV1Adapter


def answer_of(call: UpstreamCall, status: int, body: dict[str, Any] | None) -> UpstreamAnswer:
    """What the real HTTP adapter makes of an HTTP answer (the same classification rules)."""
    raw = json.dumps(body).encode() if body is not None else b""
    outcome = classify_status(status)
    payload = _read_object(raw)
    if outcome is Outcome.SUCCESSFUL and payload is None and call.operation.success_status != 202:
        outcome = Outcome.UNKNOWN
    return UpstreamAnswer(outcome, status, raw, 1000, payload=payload)


@dataclass
class Ledger:
    sales: dict[str, list[str]] = field(default_factory=dict)
    """Our upstream id -> the tokens sold."""
    advices: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Advice id -> (kind, the upstream id it refers to)."""
    duplicate_sales: list[str] = field(default_factory=list)


class FakePpuProvider:
    """A PPU v3 provider: sells on purchase, answers a retry with the same sale (or sells, if it
    never saw the purchase) and a purchase it has seen with DUPLICATE_RECORD, takes advices once
    by their id."""

    base_path = "/prepaidutility/v3/"

    def __init__(self, name: str, plan: FaultPlan, trace: list[str], read_timeout: float) -> None:
        self.name = name
        self.plan = plan
        self.trace = trace
        self.read_timeout = read_timeout
        self.ledger = Ledger()
        self._tokens = 0

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        behaviour = self.plan.provider_behaviour()
        parts = call.url.split(self.base_path, 1)[1].split("/")
        body = json.loads(call.body)
        self.trace.append(f"{self.name} {call.operation.name} {body['id'][:8]} {behaviour}")
        await asyncio.sleep(0)
        if behaviour == "refuse":
            return UpstreamAnswer(Outcome.FAILED, None, b"", 0, transport_error="ClientConnectorError", delivered=False)
        if behaviour == "503":
            return answer_of(call, 503, self._error(body, "UPSTREAM_UNAVAILABLE"))
        acts = behaviour != "500" or self.plan.rng.random() < 0.5
        status, answer = (0, None)
        if acts:
            status, answer = self._act(parts, body, decline=behaviour == "decline")
        if behaviour == "slow":
            await asyncio.sleep(self.read_timeout + 1)
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", int(self.read_timeout * 1e6), transport_error="timeout")
        if behaviour == "drop_after":
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", 0, transport_error="ServerDisconnectedError")
        if behaviour == "500":
            return answer_of(call, 500, self._error(body, "SYSTEM_ERROR"))
        if behaviour == "hollow" and status == 201:
            answer = {k: v for k, v in answer.items() if k not in ("tokens", "voucher")}
        return answer_of(call, status, answer)

    def _act(self, parts: list[str], body: dict[str, Any], *, decline: bool) -> tuple[int, dict[str, Any]]:
        if parts[0] == "meterLookups":
            return 201, {**body, "meter": body["meter"], "utility": {"name": "Sim Utility"}}
        if parts[0] != "tokenPurchases":
            return 501, self._error(body, "FUNCTION_NOT_SUPPORTED")
        if len(parts) == 2 or parts[2] == "retry":
            sale_id = parts[1]
            if len(parts) == 2 and sale_id in self.ledger.sales:
                # A purchase id seen before (its retry came first): never a second sale.
                return 400, self._error(body, "DUPLICATE_RECORD")
            if sale_id not in self.ledger.sales:
                if decline:
                    return 400, self._error(body, "TRANSACTION_DECLINED")
                self._tokens += 1
                self.ledger.sales[sale_id] = [make_token_text(self.name, self._tokens)]
            tokens = self.ledger.sales[sale_id]
            return 201, {
                **body,
                "utility": {"name": "Sim Utility"},
                "customer": {"name": "Sim"},
                "tokens": [{"tokenType": "STD", "units": 1.0, "token": t} for t in tokens],
            }
        request_id, kind, advice_id = parts[1], parts[2], parts[3]
        if request_id not in self.ledger.sales:
            return 404, self._error(body, "UNABLE_TO_LOCATE_RECORD")
        if advice_id in self.ledger.advices:
            return 400, self._error(body, "DUPLICATE_RECORD")
        self.ledger.advices[advice_id] = (kind, request_id)
        return 202, body

    @staticmethod
    def _error(body: dict[str, Any], error_type: str) -> dict[str, Any]:
        return {"errorType": error_type, "errorMessage": error_type[:20], "id": body.get("id")}


def make_token_text(provider: str, n: int) -> str:
    """A token unique to the provider and the sale (its digits need not be valid STS)."""
    return f"{provider}-{n:06d}"


class _FakeSend:
    """`send` goes to the fake provider; the rest of the real adapter (its `prepare`) stays."""

    provider: FakePpuProvider

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        return await self.provider.send(call)

    async def check_health(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class FakePpuAdapter(_FakeSend, PpuV3Adapter):
    def __init__(self, config: ProviderConfig, provider: FakePpuProvider) -> None:
        super().__init__(config)
        self.provider = provider


class FakeSuvProvider(FakePpuProvider):
    """An SUV v1 voucher provider: issues one voucher per provision id (a retry answers with
    the same one), takes advices once by their id. Its ledger uses the PPU shape: `sales` maps
    our provision id to [voucher code]."""

    base_path = "/suv/v1/"

    def _act(self, parts: list[str], body: dict[str, Any], *, decline: bool) -> tuple[int, dict[str, Any]]:
        if parts[0] == "vouchers" and (len(parts) == 1 or parts[-1] == "retry"):
            provision_id = parts[1] if len(parts) > 1 else body["id"]
            if len(parts) == 1 and provision_id in self.ledger.sales:
                return 400, FakePpuProvider._error(body, "DUPLICATE_RECORD")
            if provision_id not in self.ledger.sales:
                if decline:
                    return 400, FakePpuProvider._error(body, "TRANSACTION_DECLINED")
                self._tokens += 1
                self.ledger.sales[provision_id] = [f"{self.name}-V{self._tokens:06d}"]
            code = self.ledger.sales[provision_id][0]
            return 201, {**body, "voucher": {"code": code, "serialNumber": f"SN{self._tokens}"}}
        if len(parts) == 2 and parts[1] in ("confirmations", "reversals"):
            request_id, advice_id = body["requestId"], body["id"]
            if parts[0] == "vouchers" and request_id not in self.ledger.sales:
                return 404, FakePpuProvider._error(body, "UNABLE_TO_LOCATE_RECORD")
            if advice_id in self.ledger.advices:
                return 400, FakePpuProvider._error(body, "DUPLICATE_RECORD")
            self.ledger.advices[advice_id] = (parts[1], request_id)
            return 202, body
        return 404, FakePpuProvider._error(body, "UNABLE_TO_LOCATE_RECORD")


class FakeSuvAdapter(_FakeSend, SuvV1Adapter):
    def __init__(self, config: ProviderConfig, provider: FakeSuvProvider) -> None:
        super().__init__(config)
        self.provider = provider
