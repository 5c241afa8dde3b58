"""The simulated world: two switch nodes sharing one database, tills sending PPU traffic to
either, a fake provider, seeded crashes and restarts, and the drain at the end.

Everything runs on one virtual-time event loop (see `clock`), so a seed fixes the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from tests.sim.faults import FaultPlan, install
from tests.sim.providers import FakePpuAdapter, FakePpuProvider, FakeSuvAdapter, FakeSuvProvider
from xhuma.engine.flow import Institution, Reply, rfc3339_now
from xhuma.ppu import operations as ops
from xhuma.ppu.delivery import PpuDeliverer, recover_stale_purchases
from xhuma.ppu.examples import retail_message
from xhuma.ppu.switch import PpuSwitch
from xhuma.providers.base import ProviderConfig
from xhuma.routing import Router
from xhuma.saf.worker import SafSettings, SafWorker
from xhuma.storage import db as storage_db
from xhuma.storage.db import Database
from xhuma.storage.journal import Journal
from xhuma.vouchers import operations as suv_ops
from xhuma.vouchers.delivery import VoucherDeliverer, recover_stale_vouchers
from xhuma.vouchers.switch import VoucherSwitch

T = TypeVar("T")
CLIENT = "till-client"
PROVIDER = "simppu"
SUV_PROVIDER = "simsuv"
READ_TIMEOUT = 10.0
METERS = ("01050020001", "01050020002", "01050020003")


class InlineDatabase(Database):
    """`Database` without threads: operations queued in one loop step run together, inline,
    in one transaction (the group commit's own path, so its retry behaviour is the real one)."""

    def __init__(self, url: str, plan: FaultPlan) -> None:
        super().__init__(url, threads=1)
        install(self.engine, plan)
        self._pending: list[Any] = []
        self._holder: Any = None
        self._closed = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        if self._holder is not None:
            with contextlib.suppress(Exception):
                self._holder.close()
        self.engine.dispose()

    async def run(self, op: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((op, future, loop))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if self._closed or not batch:
            return
        holder_type = getattr(storage_db, "_HeldConnection", None)
        run_batch = getattr(self, "_run_batch", None)
        if holder_type is not None and run_batch is not None:
            if self._holder is None:
                self._holder = holder_type(self.engine)
            run_batch(self._holder, batch)
            return
        for op, future, _ in batch:  # no group-commit internals to reuse: one op, one transaction
            try:
                result = self.run_sync(op)
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


class SimNode:
    """One switch process, wired as `xhuma.node.Node` wires one, on the shared database."""

    def __init__(self, world: World, name: str) -> None:
        self.name = name
        self.db = InlineDatabase(world.url, world.plan)
        self.journal = Journal(self.db)
        config = ProviderConfig(PROVIDER, "http://simppu.invalid", read_timeout=READ_TIMEOUT)
        adapter = FakePpuAdapter(config, world.ppu)
        self.router = Router([adapter], self.db, weights={PROVIDER: 1.0})
        institution = Institution("xhuma", "Xhuma Switch")
        self.switch = PpuSwitch(self.journal, self.router, institution, broadcast_timeout=5.0)
        suv = FakeSuvAdapter(ProviderConfig(SUV_PROVIDER, "http://simsuv.invalid", kind="suv_v1"), world.suv)
        self.vouchers = VoucherSwitch(self.journal, {SUV_PROVIDER: suv}, institution)
        settings = SafSettings(
            concurrency=8,
            base_delay_seconds=0.5,
            max_delay_seconds=20.0,
            max_age_seconds=1800.0,
            lease_seconds=60.0,
            poll_seconds=2.0,
        )
        self.worker = SafWorker(
            self.db, [PpuDeliverer(self.switch), VoucherDeliverer(self.vouchers)], settings, seed=world.rng.random()
        )
        self.switch.on_enqueued = self.vouchers.on_enqueued = self.worker.wake
        self.stop = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.up = True
        self.spawn(self.worker.run(self.stop))
        self.spawn(self._recovery())

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _recovery(self) -> None:
        """`Node._recover_stale`, every few seconds."""
        older_than_us = int((READ_TIMEOUT + 5) * 1e6)
        while True:
            with contextlib.suppress(Exception):
                recovered = await self.db.run(recover_stale_purchases(self.switch, older_than_us))
                recovered += await self.db.run(recover_stale_vouchers(self.vouchers, older_than_us))
                if recovered:
                    self.switch.on_enqueued()
            await asyncio.sleep(5.0)

    def crash(self) -> None:
        """The process dies: its tasks (requests in flight among them) stop where they are."""
        self.up = False
        for task in list(self.tasks):
            task.cancel()
        self.db.close()


@dataclass
class TillRecord:
    """One answer a till got (status None: the answer never came)."""

    kind: str
    retail_id: str
    request_id: str | None
    status: int | None
    body: dict[str, Any] | None


@dataclass
class World:
    seed: int
    url: str
    plan: FaultPlan
    rng: random.Random
    sessions: int = 20
    trace: list[str] = field(default_factory=list)
    till: list[TillRecord] = field(default_factory=list)
    nodes: list[SimNode] = field(default_factory=list)
    ppu: FakePpuProvider = field(init=False)
    suv: FakeSuvProvider = field(init=False)

    def __post_init__(self) -> None:
        self.ppu = FakePpuProvider(PROVIDER, self.plan, self.trace, READ_TIMEOUT)
        self.suv = FakeSuvProvider(SUV_PROVIDER, self.plan, self.trace, READ_TIMEOUT)

    def log(self, line: str) -> None:
        loop = asyncio.get_running_loop()
        self.trace.append(f"{loop.time():.3f} {line}")

    async def run(self) -> None:
        self.nodes = [SimNode(self, "a"), SimNode(self, "b")]
        self.plan.enabled = True
        crasher = asyncio.ensure_future(self._crashes())
        await asyncio.gather(
            *(self._session(i) for i in range(self.sessions)),
            *(self._voucher_session(i) for i in range(self.sessions // 2)),
        )
        crasher.cancel()
        self.plan.enabled = False
        for index, node in enumerate(self.nodes):
            if not node.up:
                self.nodes[index] = SimNode(self, node.name)
        await self._drain()
        for node in self.nodes:
            node.crash()
        await asyncio.sleep(0)

    async def _crashes(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(1.0, 8.0))
            if not self.plan.crash_now():
                continue
            index = self.rng.randrange(len(self.nodes))
            node = self.nodes[index]
            if not node.up:
                continue
            self.log(f"crash {node.name}")
            node.crash()
            await asyncio.sleep(self.rng.uniform(0.5, 20.0))
            self.nodes[index] = SimNode(self, node.name)
            self.log(f"restart {node.name}")

    async def _drain(self) -> None:
        """Let recovery and store-and-forward finish, with no faults, for up to two virtual
        hours."""
        for _ in range(720):
            await asyncio.sleep(10.0)
            if not await self.nodes[0].db.run(_unsettled):
                return
        self.log("drain: did not settle")

    # --- tills ------------------------------------------------------------------------------

    def _node(self) -> SimNode | None:
        up = [n for n in self.nodes if n.up]
        return self.rng.choice(up) if up else None

    async def _call(
        self, kind: str, operation: Any, path: dict[str, str], body: dict[str, Any], *, suv: bool = False
    ) -> Reply | None:
        node = self._node()
        raw = json.dumps(body).encode()
        retail_id = path.get("id", "")
        if node is None:
            reply = None
        else:
            if suv:
                url = suv_ops.BASE_PATH + operation.path.format(provisionId=retail_id)
                handling = node.vouchers.handle(operation, CLIENT, raw, url, retail_id)
            else:
                url = ops.BASE_PATH + operation.path.format(id=retail_id, requestId=path.get("requestId"))
                handling = node.switch.handle(operation, CLIENT, path, raw, url)
            task = node.spawn(handling)
            try:
                reply = await asyncio.shield(task)
            except asyncio.CancelledError:
                reply = None
            except Exception as exc:  # noqa: BLE001 - the HTTP layer would answer 500
                self.log(f"switch raised {type(exc).__name__} on {kind} {retail_id[:8]}")
                reply = Reply(500, b"")
        if reply is not None and self.plan.answer_lost():
            self.log(f"lost the answer {reply.status} to {path.get('id', '')[:8]}")
            reply = None
        decoded = json.loads(reply.body) if reply is not None and reply.body else None
        status = reply.status if reply is not None else None
        request_id = body.get("requestId") if operation.is_advice else None
        target = path["id"]
        self.till.append(TillRecord(kind, target, request_id, status, decoded))
        self.log(f"till {kind} {target[:8]} -> {status} {(decoded or {}).get('errorType', '')}")
        return reply

    async def _session(self, number: int) -> None:
        """One retail purchase: the purchase, retries while the answer is unknown or lost,
        now and then a retry after an answer, then a confirmation or a reversal."""
        rng = self.rng
        await asyncio.sleep(rng.uniform(0.0, 60.0))
        message = retail_message(
            CLIENT,
            terminal_id=f"TILL{number:04d}",
            meter={"meterId": rng.choice(METERS)},
            purchaseAmount={"amount": rng.choice((1000, 2500, 5000)), "currency": "710"},
        )
        purchase_id = message["id"]
        reply = await self._call("purchase", ops.PURCHASE, {"id": purchase_id}, message)
        for _ in range(rng.randint(0, 3)):
            if reply is not None and reply.status not in (500, 504) and (reply.status >= 300 or rng.random() > 0.1):
                break  # a till asks again after no answer or "unknown", and now and then after tokens
            await asyncio.sleep(rng.uniform(1.0, 30.0))
            body = {**message, "id": _new_id() if rng.random() < 0.5 else purchase_id, "time": rfc3339_now()}
            reply = await self._call("retry", ops.RETRY, {"id": purchase_id}, body)
        choice = rng.random()
        sold = reply is not None and reply.status < 300
        if sold and choice < 0.6 or not sold and choice < 0.3:
            await self._advise(ops.CONFIRMATION, purchase_id, tenders=[_cash()])
        elif choice < 0.8 or not sold and choice < 0.7:
            await self._advise(ops.REVERSAL, purchase_id, reversalReason="CANCELLED")

    async def _voucher_session(self, number: int) -> None:
        """One voucher provision, retried while unknown or lost, then confirmed or reversed."""
        rng = self.rng
        await asyncio.sleep(rng.uniform(0.0, 60.0))
        identifiers = [{"institutionId": CLIENT, "transactionIdentifier": f"POS-{number}"}]
        message = retail_message(CLIENT, terminal_id=f"POS{number:05d}", thirdPartyIdentifiers=identifiers)
        if rng.random() < 0.5:
            message["product"] = {"productId": "GIFT-100"}
        else:
            message["product"] = {"productId": "STREAM-VAR"}
            message["amounts"] = {"requestAmount": {"amount": rng.choice((5000, 20000)), "currency": 710}}
        provision_id = message["id"]
        reply = await self._call("provision", suv_ops.PROVISION, {"id": provision_id}, message, suv=True)
        for _ in range(rng.randint(0, 3)):
            if reply is not None and reply.status not in (500, 504) and (reply.status >= 300 or rng.random() > 0.1):
                break
            await asyncio.sleep(rng.uniform(1.0, 30.0))
            body = {**message, "id": _new_id(), "time": rfc3339_now()}
            reply = await self._call("provision_retry", suv_ops.RETRY, {"id": provision_id}, body, suv=True)
        issued = reply is not None and reply.status < 300
        choice = rng.random()
        if issued and choice < 0.6:
            tender = {"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}
            await self._advise(suv_ops.CONFIRM, provision_id, "voucher_confirmation", suv=True, tenders=[tender])
        elif choice < 0.8:
            await self._advise(suv_ops.REVERSE, provision_id, "voucher_reversal", suv=True, reversalReason="CANCELLED")

    async def _advise(
        self, operation: Any, request_id: str, kind: str | None = None, *, suv: bool = False, **fields: Any
    ) -> None:
        """Repeat one advice (same id) until it is acknowledged or refused, as tills do."""
        await asyncio.sleep(self.rng.uniform(0.0, 10.0))
        advice = {"id": _new_id(), "requestId": request_id, "time": rfc3339_now(), "thirdPartyIdentifiers": []}
        advice.update(fields)
        kind = kind or ("confirmation" if operation is ops.CONFIRMATION else "reversal")
        for _ in range(4):
            path = {"id": advice["id"], "requestId": request_id}
            reply = await self._call(kind, operation, path, advice, suv=suv)
            if reply is not None and reply.status in (202, 400, 404):
                return
            await asyncio.sleep(self.rng.uniform(1.0, 20.0))


def _unsettled(conn: Connection) -> int:
    from sqlalchemy import func, select

    from xhuma.storage.tables import saf_entries, transactions

    pending = conn.execute(select(func.count()).where(saf_entries.c.state == "pending")).scalar_one()
    stale = conn.execute(select(func.count()).where(transactions.c.state == "sent_upstream")).scalar_one()
    return int(pending + stale)


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _cash() -> dict[str, Any]:
    return {"tenderType": "CASH", "amount": {"amount": 1000, "currency": "710"}}
