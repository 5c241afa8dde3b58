"""Crash-safety harness: real processes, real `kill -9`, killed database connections, and a
ledger comparison at the end.

A seeded schedule (same seed, same kill moments and same traffic mix) drives tills against the
switch while the switch is killed and restarted and, on PostgreSQL, while the switch's database
connections are terminated under it (`pg_terminate_backend`). The tills buy electricity (PPU v3
at the simulated utility provider) and vouchers (SUV v1 at the simulated voucher provider:
provisions, redemptions, refunds and their advices). Afterwards the switch's journal is compared
with both providers' own records:
- every purchase the provider made is in the journal, in a state that agrees with it;
- no retail request bought more than once;
- an advice counts as acknowledged only when the till got a 202; every acknowledged advice (and
  every advice the switch journalled for delivery) reached the provider under its own id, or is
  an open exception (a saf entry in state `exception`, or an open reconciliation exception);
- every token a till was given is the token the provider issued;
- no voucher issued twice for one retail provision, every code a till was given is the one the
  provider issued for it, and the redemptions and refunds the provider recorded are the
  journal's, on the same voucher.

Short form (CI): `pytest tests/test_crash_safety.py`. Long form:
`python -m tests.harness.crash --kills 10 --connection-kills 20 --tills 8 --seed 1
--database-url postgresql://127.0.0.1:5432/<db>` (default: a fresh SQLite file; connection kills
need PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, text

from tests.support import ROOT, base_message, free_port, new_id, now, process_env, xhuma
from xhuma.ppu.examples import retail_message
from xhuma.vouchers.catalogue import CSV_HEADER

GENERATED_METERS = [f"{n:011d}" for n in range(40_000_000_001, 40_000_000_001 + 200)]
CLIENT = "r1"
CATALOGUE = (
    CSV_HEADER
    + "\nGIFT-100,Gift card R100,gift,A gift card,fixed,10000,,,710,,,vouchr,VCH-GIFT-100,1"
    + "\nSTREAM-VAR,Streaming credit,streaming,Any amount,variable,,5000,50000,710,,,vouchr,VCH-STREAM,1\n"
)
VOUCHER_SHARE = 0.3
"""The share of a till's sales that are vouchers rather than electricity."""


@dataclass
class Advice:
    """One advice a till sent, and every answer it got (None: no answer)."""

    id: str
    path: str
    statuses: list[int | None] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return 202 in self.statuses


@dataclass
class RetailOutcome:
    """What one retail purchase looked like from the till."""

    retail_id: str
    message: dict[str, Any]
    tokens: list[str] | None = None
    declined: bool = False
    identifiers: list[Any] = field(default_factory=list)
    advices: list[Advice] = field(default_factory=list)


@dataclass
class VoucherStep:
    """A redemption or refund as the till saw it: its id, code and final status (None: none)."""

    kind: str
    retail_id: str
    code: str
    status: int | None = None


@dataclass
class VoucherOutcome:
    """One voucher sale from the till: the provision, what followed, and the advices."""

    retail_id: str
    code: str | None = None
    declined: bool = False
    steps: list[VoucherStep] = field(default_factory=list)
    advices: list[Advice] = field(default_factory=list)


@dataclass
class Report:
    seed: int
    kills: int
    connection_kills: int
    backends_terminated: int
    purchases: int
    approved: int
    declined: int
    advices: int
    advices_sent: int
    provider_purchases: int
    vouchers: int
    vouchers_issued: int
    redemptions: int
    refunds: int
    seconds: float
    problems: list[str]

    def summary(self) -> str:
        return (
            f"seed {self.seed}: {self.kills} kills, {self.connection_kills} connection kills "
            f"({self.backends_terminated} backends terminated), {self.purchases} retail purchases "
            f"({self.approved} approved, {self.declined} declined), {self.advices} advices acknowledged of "
            f"{self.advices_sent} sent, {self.provider_purchases} purchases in the provider's ledger, "
            f"{self.vouchers} voucher provisions ({self.vouchers_issued} issued to tills), {self.redemptions} "
            f"redemptions and {self.refunds} refunds approved, {self.seconds:.1f} s, {len(self.problems)} problems"
        )


def _engine_url(database_url: str) -> str:
    return database_url.replace("postgresql://", "postgresql+psycopg://", 1)


class Processes:
    def __init__(self, workdir: Path, database_url: str, seed: int) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.sim_port, self.voucher_port, self.port = free_port(), free_port(), free_port()
        config = workdir / "xhuma.toml"
        config.write_text(
            '[switch]\ninstitution_id = "xhuma"\nrecovery_interval_seconds = 0.5\n\n'
            f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{self.sim_port}"\nread_timeout = 1.5\n\n'
            f'[[providers]]\nname = "vouchr"\nkind = "suv_v1"\nbase_url = "http://127.0.0.1:{self.voucher_port}"\n'
            'username = "xhuma"\npassword = "pw"\nread_timeout = 1.5\n\n'
            "[saf]\nbase_delay_seconds = 0.05\nmax_delay_seconds = 0.5\nlease_seconds = 5\npoll_seconds = 0.05\n"
        )
        self.env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
        self.simulator = self._start(
            ["simulate", "ppu", "--port", str(self.sim_port), "--latency-ms", "4", "--failure-rate", "0.03"]
            + ["--seed", str(seed)],
            "simulator",
        )
        self.voucher_simulator = self._start(
            ["simulate", "vouchers", "--port", str(self.voucher_port), "--name", "vouchr", "--kind", "full"]
            + ["--latency-ms", "4", "--seed", str(seed)],
            "vouchers",
        )
        self._wait(self.sim_port, self.simulator)
        self._wait(self.voucher_port, self.voucher_simulator)
        xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", CLIENT, env=self.env)
        catalogue = workdir / "catalogue.csv"
        catalogue.write_text(CATALOGUE)
        xhuma("catalogue", "import", str(catalogue), "--client", CLIENT, env=self.env)
        self.switch = self.start_switch()

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "xhuma", *args], env=self.env, stdout=log, stderr=log, cwd=ROOT)

    def _wait(self, port: int, process: subprocess.Popen[bytes]) -> None:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                logs = "\n".join(f"--- {log.name}:\n{log.read_text()[-3000:]}" for log in self.workdir.glob("*.log"))
                raise RuntimeError(f"process on {port} exited:\n{logs}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"process on {port} never became healthy; see {self.workdir}")

    def start_switch(self) -> subprocess.Popen[bytes]:
        process = self._start(["serve", "--port", str(self.port)], "switch")
        self._wait(self.port, process)
        return process

    def kill_switch(self) -> None:
        os.kill(self.switch.pid, signal.SIGKILL)
        self.switch.wait()

    def stop(self) -> None:
        for process in (self.switch, self.simulator, self.voucher_simulator):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


class ConnectionKiller:
    """Terminates every other connection to the switch's PostgreSQL database, from its own."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        self.database = database_url.rsplit("/", 1)[1].split("?", 1)[0]
        self.conn = psycopg.connect(database_url, autocommit=True)

    def kill(self) -> int:
        rows = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.database,),
        ).fetchall()
        return sum(1 for (terminated,) in rows if terminated)

    def close(self) -> None:
        self.conn.close()


class Till:
    """A point-of-sale: buys, and when it gets no answer, retries the same purchase; then
    confirms or reverses what it bought. It never gives up on a purchase it started. It sells
    vouchers too: provisions (retried when unanswered), then redemptions and refunds."""

    def __init__(self, session: aiohttp.ClientSession, base: str, rng: random.Random) -> None:
        self.session, self.base, self.rng = session, base, rng

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        try:
            async with self.session.post(self.base + path, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status, (await r.json(content_type=None)) or {}
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None, {}

    async def buy(self, outcomes: list[RetailOutcome]) -> None:
        meter = self.rng.choice(GENERATED_METERS)
        message = base_message(
            CLIENT,
            meter={"meterId": meter},
            purchaseAmount={"amount": self.rng.randrange(1000, 50000), "currency": "710"},
        )
        outcome = RetailOutcome(message["id"], message)
        outcomes.append(outcome)
        ppu = "/prepaidutility/v3"
        status, body = await self.post(f"{ppu}/tokenPurchases/{message['id']}", message)
        while status is None or status in (500, 504):
            await asyncio.sleep(0.2)
            status, body = await self.post(f"{ppu}/tokenPurchases/{message['id']}/retry", {**message, "id": new_id()})
        if status == 201:
            outcome.tokens = [t["token"] for t in body.get("tokens", [])]
            outcome.identifiers = body["thirdPartyIdentifiers"]
            kind = "confirmations" if self.rng.random() < 0.7 else "reversals"
            advice = {"id": new_id(), "requestId": outcome.retail_id, "time": now()}
            advice["thirdPartyIdentifiers"] = outcome.identifiers
            if kind == "reversals":
                advice["reversalReason"] = "CANCELLED"
            path = f"{ppu}/tokenPurchases/{outcome.retail_id}/{kind}/{advice['id']}"
            outcome.advices.append(await self.advise(path, advice))
        else:
            outcome.declined = True

    async def advise(self, path: str, advice: dict[str, Any]) -> Advice:
        """Sends an advice until the switch answers it: a 202 acknowledges it; a 4xx is a refusal
        (a DUPLICATE_RECORD after a crash means an earlier attempt was journalled, but it was
        never acknowledged to this till) and is not counted as acknowledged."""
        sent = Advice(advice["id"], path)
        while True:
            status, _ = await self.post(path, advice)
            sent.statuses.append(status)
            if status is not None and (status == 202 or 400 <= status < 500):
                return sent
            await asyncio.sleep(0.2)

    def _suv(self, **fields: Any) -> dict[str, Any]:
        identifiers = [{"institutionId": CLIENT, "transactionIdentifier": "POS-1"}]
        return retail_message(CLIENT, client_name="Test Retailer", thirdPartyIdentifiers=identifiers, **fields)

    async def _suv_advice(self, path: str, request_id: str, *, confirm: bool) -> Advice:
        body: dict[str, Any] = {"id": new_id(), "requestId": request_id, "time": now(), "thirdPartyIdentifiers": []}
        if confirm and path == "/suv/v1/vouchers/confirmations":
            body["tenders"] = [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}]
        if not confirm:
            body["reversalReason"] = "CANCELLED"
        return await self.advise(path, body)

    async def sell_voucher(self, outcomes: list[VoucherOutcome]) -> None:
        if self.rng.random() < 0.5:
            request = self._suv(product={"productId": "GIFT-100"})
        else:
            request = self._suv(product={"productId": "STREAM-VAR"})
            request["amounts"] = {"requestAmount": {"amount": self.rng.randrange(5000, 50000), "currency": 710}}
        outcome = VoucherOutcome(request["id"])
        outcomes.append(outcome)
        status, body = await self.post("/suv/v1/vouchers", request)
        while status is None or status in (500, 504):
            await asyncio.sleep(0.2)
            status, body = await self.post(f"/suv/v1/vouchers/{request['id']}/retry", request)
        code = (body.get("voucher") or {}).get("code") if status == 201 else None
        if code is None:
            outcome.declined = True
            return
        outcome.code = code
        confirm = self.rng.random() < 0.8
        advice = await self._suv_advice(
            f"/suv/v1/vouchers/{'confirmations' if confirm else 'reversals'}", outcome.retail_id, confirm=confirm
        )
        outcome.advices.append(advice)
        if not (confirm and advice.acknowledged) or self.rng.random() < 0.4:
            return
        step = await self._step(outcome, "redemptions", code)
        if step is None or self.rng.random() < 0.5:
            return
        await self._step(outcome, "refunds", code)

    async def _step(self, outcome: VoucherOutcome, kind: str, code: str) -> VoucherStep | None:
        """A redemption or refund; the provider may refuse it until the advice before it has
        arrived, so a refused one is tried again (under a new id) a few times. An unanswered one
        is reversed, as a till that cannot tell what happened does. Confirmed or reversed when
        approved; the confirmed step is returned."""
        for _ in range(4):
            request = self._suv(voucher={"code": code})
            step = VoucherStep(kind, request["id"], code)
            outcome.steps.append(step)
            step.status, _ = await self.post(f"/suv/v1/{kind}", request)
            if step.status is None or step.status >= 500:
                reversal = await self._suv_advice(f"/suv/v1/{kind}/reversals", step.retail_id, confirm=False)
                outcome.advices.append(reversal)
                return None
            if step.status == 201:
                confirm = self.rng.random() < 0.8
                advice = await self._suv_advice(
                    f"/suv/v1/{kind}/{'confirmations' if confirm else 'reversals'}", step.retail_id, confirm=confirm
                )
                outcome.advices.append(advice)
                return step if confirm and advice.acknowledged else None
            await asyncio.sleep(0.3)
        return None


@dataclass
class Schedule:
    kills: int = 0
    connection_kills: int = 0
    backends_terminated: int = 0


async def drive(
    processes: Processes, kills: int, seed: int, tills: int, connection_kills: int = 0
) -> tuple[list[RetailOutcome], list[VoucherOutcome], Schedule]:
    rng = random.Random(seed)
    connection_rng = random.Random(seed * 7919 + 1)
    outcomes: list[RetailOutcome] = []
    voucher_outcomes: list[VoucherOutcome] = []
    schedule = Schedule()
    stop = asyncio.Event()
    killer = ConnectionKiller(processes.database_url) if connection_kills else None
    async with aiohttp.ClientSession(
        headers={"Authorization": "Basic " + base64.b64encode(b"till:pw").decode()}
    ) as session:

        async def till_loop(n: int) -> None:
            till_rng = random.Random(seed * 1000 + n)
            till = Till(session, f"http://127.0.0.1:{processes.port}", till_rng)
            while not stop.is_set():
                if till_rng.random() < VOUCHER_SHARE:
                    await till.sell_voucher(voucher_outcomes)
                else:
                    await till.buy(outcomes)

        async def process_kills() -> None:
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                await asyncio.to_thread(processes.kill_switch)
                schedule.kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                processes.switch = await asyncio.to_thread(processes.start_switch)

        async def connection_kills_loop() -> None:
            assert killer is not None
            for _ in range(connection_kills):
                await asyncio.sleep(connection_rng.uniform(0.2, 1.2))
                schedule.backends_terminated += await asyncio.to_thread(killer.kill)
                schedule.connection_kills += 1

        workers = [asyncio.create_task(till_loop(n)) for n in range(tills)]
        try:
            await asyncio.gather(process_kills(), *([connection_kills_loop()] if killer else []))
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), timeout=120)
        finally:
            if killer is not None:
                killer.close()
    return outcomes, voucher_outcomes, schedule


def wait_drained(database_url: str, seconds: float = 90) -> None:
    engine = create_engine(_engine_url(database_url))
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(text("SELECT count(*) FROM saf_entries WHERE state = 'pending'")).scalar()
                open_requests = conn.execute(
                    text(
                        "SELECT count(*) FROM transactions WHERE kind IN ('purchase', 'voucher_provision',"
                        " 'redemption', 'refund') AND state IN ('received', 'sent_upstream', 'unknown')"
                    )
                ).scalar()
            if pending == 0 and open_requests == 0:
                return
            time.sleep(0.25)
        raise AssertionError(
            f"not drained after {seconds} s: {pending} pending deliveries, {open_requests} open requests"
        )
    finally:
        engine.dispose()


@dataclass
class Journal:
    txs: dict[str, Any]
    deliveries: dict[str, str]
    exceptions: set[str]
    codes: dict[str, str | None]
    early_reversals: dict[str, tuple[str, str]]
    """Reversal advice tx id -> (request kind, request retail id) of a request not seen first."""

    @classmethod
    def read(cls, database_url: str) -> Journal:
        engine = create_engine(_engine_url(database_url))
        with engine.connect() as conn:
            txs = {
                r.id: r for r in conn.execute(text("SELECT id, retail_id, kind, state, parent_id FROM transactions"))
            }
            deliveries = {r.tx_id: r.state for r in conn.execute(text("SELECT tx_id, state FROM saf_entries"))}
            exceptions = {
                r.tx_id for r in conn.execute(text("SELECT tx_id FROM reconciliation_exceptions WHERE state = 'open'"))
            }
            codes = {r.id: r.code for r in conn.execute(text("SELECT id, code FROM vouchers"))}
            early_reversals = {
                r.reversal_tx_id: (r.request_kind, r.request_id)
                for r in conn.execute(
                    text("SELECT reversal_tx_id, request_kind, request_id FROM voucher_early_reversals")
                )
            }
        engine.dispose()
        return cls(txs, deliveries, exceptions, codes, early_reversals)

    def advice_problem(self, advice_tx: Any, provider_advices: dict[str, str], what: str) -> str | None:
        """Why an advice the switch took is neither at the provider under its own id nor an open
        exception (None: it is one of the two)."""
        if advice_tx.id in self.exceptions or advice_tx.parent_id in self.exceptions:
            return None
        state = self.deliveries.get(advice_tx.id)
        if state == "exception":
            return None
        if state != "delivered":
            return f"{what} {advice_tx.retail_id} not delivered (saf {state}) and no open exception"
        if provider_advices.get(advice_tx.id) != advice_tx.parent_id:
            return f"{what} {advice_tx.retail_id} is delivered but the provider has no advice {advice_tx.id}"
        return None


PPU_ADVICES = ("confirmation", "reversal")
SUV_ADVICES = tuple(
    f"{request}_{advice}" for request in ("voucher", "redemption", "refund") for advice in ("confirmation", "reversal")
)


def compare(journal: Journal, ledger: dict[str, Any], outcomes: list[RetailOutcome]) -> tuple[list[str], int]:
    txs = journal.txs
    problems: list[str] = []
    by_retail = {row.retail_id: row for row in txs.values() if row.kind == "purchase"}
    provider_ids = [p["id"] for p in ledger["purchases"]]
    if len(provider_ids) != len(set(provider_ids)):
        problems.append("the provider's ledger holds one purchase id twice")
    provider = {p["id"]: p for p in ledger["purchases"]}
    per_retail: dict[str, int] = defaultdict(int)
    for pid in provider:
        row = txs.get(pid)
        if row is None:
            problems.append(f"provider purchase {pid} is missing from the journal")
            continue
        per_retail[row.retail_id] += 1
        if row.state not in ("approved", "confirmed", "reversed"):
            problems.append(f"provider purchase {pid} (retail {row.retail_id}) is {row.state} in the journal")
    problems += [f"retail purchase {r} bought {n} times" for r, n in per_retail.items() if n > 1]
    provider_advices = {a["id"]: a["requestId"] for a in ledger["advices"]}
    by_advice_id = {t.retail_id: t for t in txs.values() if t.kind in PPU_ADVICES}
    acknowledged = 0
    for outcome in outcomes:
        row = by_retail.get(outcome.retail_id)
        if row is None:
            if outcome.tokens:
                problems.append(f"retail purchase {outcome.retail_id} got tokens but is not in the journal")
            continue
        if outcome.tokens is not None:
            issued = provider.get(row.id)
            if issued is None or issued["tokens"] != outcome.tokens:
                problems.append(f"retail purchase {outcome.retail_id}: the till's tokens are not the provider's")
            if row.state == "declined":
                problems.append(f"retail purchase {outcome.retail_id} got tokens but is declined in the journal")
        for advice in outcome.advices:
            if not advice.acknowledged:
                continue
            acknowledged += 1
            advice_tx = by_advice_id.get(advice.id)
            if advice_tx is None or advice_tx.parent_id != row.id:
                problems.append(f"acknowledged advice {advice.id} is not in the journal")
    for advice_tx in by_advice_id.values():  # every advice the switch took must arrive, acknowledged or not
        parent = txs.get(advice_tx.parent_id)
        if parent is not None and parent.state == "declined" and advice_tx.id not in journal.deliveries:
            continue  # nothing was done upstream: nothing to advise
        problem = journal.advice_problem(advice_tx, provider_advices, f"{advice_tx.kind} advice")
        if problem:
            problems.append(problem)
    return problems, acknowledged


def compare_vouchers(journal: Journal, ledger: dict[str, Any], outcomes: list[VoucherOutcome]) -> tuple[list[str], int]:
    txs = journal.txs
    problems: list[str] = []
    provisions: dict[str, Any] = ledger["provisions"]
    if ledger["issued"] != len(provisions):
        problems.append(f"the voucher provider issued {ledger['issued']} vouchers under {len(provisions)} ids")
    per_retail: dict[str, list[str]] = defaultdict(list)
    for pid, issued in provisions.items():
        row = txs.get(pid)
        if row is None or row.kind != "voucher_provision":
            problems.append(f"provider voucher {issued['code']} (provision {pid}) is not a provision in the journal")
            continue
        per_retail[row.retail_id].append(issued["code"])
        if row.state not in ("approved", "confirmed", "reversed"):
            problems.append(f"provider voucher {issued['code']} (retail {row.retail_id}) is {row.state} in the journal")
        if journal.codes.get(pid) != issued["code"]:
            problems.append(f"provision {pid}: journal code {journal.codes.get(pid)}, provider {issued['code']}")
    problems += [
        f"retail provision {r} issued {len(codes)} vouchers: {codes}"
        for r, codes in per_retail.items()
        if len(codes) > 1
    ]
    for kind in ("redemption", "refund"):
        for step_id, step in ledger[kind + "s"].items():
            row = txs.get(step_id)
            if row is None or row.kind != kind:
                problems.append(f"provider {kind} {step_id} of voucher {step['code']} is not in the journal")
                continue
            if row.state not in ("approved", "confirmed", "reversed"):
                problems.append(f"provider {kind} {step_id} (retail {row.retail_id}) is {row.state} in the journal")
            code = journal.codes.get(row.parent_id or "")
            if code != step["code"]:
                problems.append(f"{kind} {row.retail_id}: provider voucher {step['code']}, journal {code}")
        for row in txs.values():
            if row.kind == kind and row.state in ("approved", "confirmed") and row.id not in ledger[kind + "s"]:
                problems.append(f"journal {kind} {row.retail_id} is {row.state} but the provider has no such {kind}")
    provisions_by_retail = {r.retail_id: r for r in txs.values() if r.kind == "voucher_provision"}
    steps_by_retail = {r.retail_id: r for r in txs.values() if r.kind in ("redemption", "refund")}
    by_advice_id = {t.retail_id: t for t in txs.values() if t.kind in SUV_ADVICES}
    # The provider keeps the advices it took (202) and the reversals it remembers for a request it
    # has not seen (404, so that request is refused if it ever comes): both were received.
    provider_advices = {a_id: a["requestId"] for a_id, a in ledger["advices"].items()}
    acknowledged = 0
    for outcome in outcomes:
        row = provisions_by_retail.get(outcome.retail_id)
        if outcome.code is not None:
            if row is None:
                problems.append(f"retail provision {outcome.retail_id} got voucher {outcome.code}, not in the journal")
            elif (provisions.get(row.id) or {}).get("code") != outcome.code:
                problems.append(f"retail provision {outcome.retail_id}: voucher {outcome.code} is not the provider's")
        for step in outcome.steps:
            if step.status != 201:
                continue
            step_row = steps_by_retail.get(step.retail_id)
            at_provider = ledger[step.kind].get(step_row.id) if step_row is not None else None
            if at_provider is None or at_provider["code"] != step.code:
                problems.append(f"{step.kind[:-1]} {step.retail_id} of {step.code} approved, not at the provider")

        for advice in outcome.advices:
            if advice.acknowledged:
                acknowledged += 1
                if advice.id not in by_advice_id:
                    problems.append(f"acknowledged voucher advice {advice.id} ({advice.path}) is not in the journal")
    requests = {(r.kind, r.retail_id) for r in txs.values() if r.state != "declined"}
    for advice_tx in by_advice_id.values():
        if advice_tx.parent_id is None:
            # A reversal of a request the switch never journalled, so never sent: it is kept to
            # refuse that request if it comes, and nothing goes upstream.
            request = journal.early_reversals.get(advice_tx.id)
            if request is None:
                problems.append(f"{advice_tx.kind} advice {advice_tx.retail_id} has no request and no early reversal")
            elif request in requests:
                problems.append(f"{request[0]} {request[1]} went ahead after its reversal came first")
            continue
        parent = txs.get(advice_tx.parent_id)
        if parent is not None and parent.state == "declined" and advice_tx.id not in journal.deliveries:
            continue
        problem = journal.advice_problem(advice_tx, provider_advices, f"{advice_tx.kind} advice")
        if problem:
            problems.append(problem)
    return problems, acknowledged


def run(kills: int, seed: int, database_url: str | None = None, tills: int = 8, connection_kills: int = 0) -> Report:
    import httpx

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xhuma-crash-") as folder:
        workdir = Path(folder)
        url = database_url or f"sqlite:///{workdir / 'xhuma.db'}"
        if connection_kills and not url.startswith("postgresql"):
            raise ValueError("connection kills need a PostgreSQL database")
        processes = Processes(workdir, url, seed)
        try:
            outcomes, voucher_outcomes, schedule = asyncio.run(drive(processes, kills, seed, tills, connection_kills))
            wait_drained(url)
            journal = Journal.read(url)
            ledger = httpx.get(f"http://127.0.0.1:{processes.sim_port}/_sim/ledger", timeout=30).json()
            voucher_ledger = httpx.get(f"http://127.0.0.1:{processes.voucher_port}/_sim/ledger", timeout=30).json()
            problems, advices = compare(journal, ledger, outcomes)
            voucher_problems, voucher_advices = compare_vouchers(journal, voucher_ledger, voucher_outcomes)
        except Exception:
            for log in workdir.glob("*.log"):
                print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            processes.stop()
    steps = [s for o in voucher_outcomes for s in o.steps if s.status == 201]
    return Report(
        seed=seed,
        kills=schedule.kills,
        connection_kills=schedule.connection_kills,
        backends_terminated=schedule.backends_terminated,
        purchases=len(outcomes),
        approved=sum(1 for o in outcomes if o.tokens is not None),
        declined=sum(1 for o in outcomes if o.declined),
        advices=advices + voucher_advices,
        advices_sent=sum(len(o.advices) for o in outcomes) + sum(len(o.advices) for o in voucher_outcomes),
        provider_purchases=len(ledger["purchases"]),
        vouchers=len(voucher_outcomes),
        vouchers_issued=sum(1 for o in voucher_outcomes if o.code is not None),
        redemptions=sum(1 for s in steps if s.kind == "redemptions"),
        refunds=sum(1 for s in steps if s.kind == "refunds"),
        seconds=time.monotonic() - started,
        problems=problems + voucher_problems,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kill -9s of the switch")
    parser.add_argument("--connection-kills", type=int, default=0, help="terminations of its database connections")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tills", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    report = run(args.kills, args.seed, args.database_url, args.tills, args.connection_kills)
    print(report.summary())
    for problem in report.problems:
        print("PROBLEM:", problem)
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
