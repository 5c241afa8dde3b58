"""Crash-safety harness: real processes, real `kill -9`, and a ledger comparison at the end.

A seeded schedule (same seed, same kill moments and same traffic mix) drives retailers
against the switch while the switch is killed and restarted; afterwards the switch's journal is
compared with the simulated provider's own ledger:
- every purchase the provider made is in the journal, in a state that agrees with it;
- no retail request bought more than once;
- every advice the switch acknowledged reached the provider;
- every token a retailer was given is the token the provider issued.

Short form (CI): `pytest tests/test_crash_safety.py`. Long form:
`python -m tests.harness.crash --kills 25 --seed 1 --database-url sqlite:///var/crash.db`."""

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, text

from tests.support import ROOT, base_message, free_port, new_id, now, process_env, xhuma

GENERATED_METERS = [f"{n:011d}" for n in range(40_000_000_001, 40_000_000_001 + 200)]


@dataclass
class RetailOutcome:
    """What one retail purchase looked like from the till."""

    retail_id: str
    message: dict[str, Any]
    tokens: list[str] | None = None
    declined: bool = False
    identifiers: list[Any] = field(default_factory=list)
    advices: list[tuple[str, str]] = field(default_factory=list)
    """(advice id, "confirmations" | "reversals") acknowledged with 202."""


@dataclass
class Report:
    seed: int
    kills: int
    purchases: int
    approved: int
    declined: int
    advices: int
    provider_purchases: int
    seconds: float
    problems: list[str]

    def summary(self) -> str:
        return (
            f"seed {self.seed}: {self.kills} kills, {self.purchases} retail purchases ({self.approved} approved, "
            f"{self.declined} declined), {self.advices} advices acknowledged, {self.provider_purchases} purchases "
            f"in the provider's ledger, {self.seconds:.1f} s, {len(self.problems)} problems"
        )


class Processes:
    def __init__(self, workdir: Path, database_url: str, seed: int) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.sim_port, self.port = free_port(), free_port()
        config = workdir / "xhuma.toml"
        config.write_text(
            '[switch]\ninstitution_id = "xhuma"\nrecovery_interval_seconds = 0.5\n\n'
            f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{self.sim_port}"\nread_timeout = 1.5\n\n'
            "[saf]\nbase_delay_seconds = 0.05\nmax_delay_seconds = 0.5\nlease_seconds = 5\npoll_seconds = 0.05\n"
        )
        self.env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
        self.simulator = self._start(
            [
                "simulate",
                "ppu",
                "--port",
                str(self.sim_port),
                "--latency-ms",
                "4",
                "--failure-rate",
                "0.03",
                "--seed",
                str(seed),
            ],
            "simulator",
        )
        self._wait(self.sim_port, self.simulator)
        xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=self.env)
        self.switch = self.start_switch()

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "xhuma", *args], env=self.env, stdout=log, stderr=log, cwd=ROOT)

    def _wait(self, port: int, process: subprocess.Popen[bytes]) -> None:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"process on {port} exited; see {self.workdir}")
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
        for process in (self.switch, self.simulator):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


class Till:
    """A point-of-sale: buys, and when it gets no answer, retries the same purchase; then
    confirms or reverses what it bought. It never gives up on a purchase it started."""

    def __init__(self, session: aiohttp.ClientSession, base: str, rng: random.Random) -> None:
        self.session, self.base, self.rng = session, base, rng

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        try:
            async with self.session.post(self.base + path, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status, (await r.json(content_type=None)) or {}
        except (TimeoutError, aiohttp.ClientError):
            return None, {}

    async def buy(self, outcomes: list[RetailOutcome]) -> None:
        meter = self.rng.choice(GENERATED_METERS)
        message = base_message(
            "r1",
            meter={"meterId": meter},
            purchaseAmount={"amount": self.rng.randrange(1000, 50000), "currency": "710"},
        )
        outcome = RetailOutcome(message["id"], message)
        outcomes.append(outcome)
        status, body = await self.post(f"/tokenPurchases/{message['id']}", message)
        while status is None or status in (500, 504):
            await asyncio.sleep(0.2)
            status, body = await self.post(f"/tokenPurchases/{message['id']}/retry", {**message, "id": new_id()})
        if status == 201:
            outcome.tokens = [t["token"] for t in body.get("tokens", [])]
            outcome.identifiers = body["thirdPartyIdentifiers"]
            kind = "confirmations" if self.rng.random() < 0.7 else "reversals"
            await self.advise(outcome, kind)
        else:
            outcome.declined = True

    async def advise(self, outcome: RetailOutcome, kind: str) -> None:
        advice = {
            "id": new_id(),
            "requestId": outcome.retail_id,
            "time": now(),
            "thirdPartyIdentifiers": outcome.identifiers,
        }
        if kind == "reversals":
            advice["reversalReason"] = "CANCELLED"
        path = f"/tokenPurchases/{outcome.retail_id}/{kind}/{advice['id']}"
        while True:
            status, _ = await self.post(path, advice)
            if status == 202:
                outcome.advices.append((advice["id"], kind))
                return
            if status == 400:  # our own earlier attempt got through before the crash
                outcome.advices.append((advice["id"], kind))
                return
            await asyncio.sleep(0.2)


async def drive(processes: Processes, kills: int, seed: int, tills: int) -> list[RetailOutcome]:
    rng = random.Random(seed)
    outcomes: list[RetailOutcome] = []
    base = f"http://127.0.0.1:{processes.port}/prepaidutility/v3"
    stop = asyncio.Event()
    async with aiohttp.ClientSession(
        headers={"Authorization": "Basic " + base64.b64encode(b"till:pw").decode()}
    ) as session:

        async def till_loop(n: int) -> None:
            till = Till(session, base, random.Random(seed * 1000 + n))
            while not stop.is_set():
                await till.buy(outcomes)

        workers = [asyncio.create_task(till_loop(n)) for n in range(tills)]
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            await asyncio.to_thread(processes.kill_switch)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            processes.switch = await asyncio.to_thread(processes.start_switch)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=120)
    return outcomes


def wait_drained(database_url: str, seconds: float = 90) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(text("SELECT count(*) FROM saf_entries WHERE state = 'pending'")).scalar()
                open_purchases = conn.execute(
                    text(
                        "SELECT count(*) FROM transactions"
                        " WHERE kind = 'purchase' AND state IN ('sent_upstream', 'unknown')"
                    )
                ).scalar()
            if pending == 0 and open_purchases == 0:
                return
            time.sleep(0.25)
        raise AssertionError(
            f"not drained after {seconds} s: {pending} pending deliveries, {open_purchases} open purchases"
        )
    finally:
        engine.dispose()


def compare(database_url: str, sim_url: str, outcomes: list[RetailOutcome]) -> tuple[list[str], dict[str, Any]]:
    import httpx

    ledger = httpx.get(sim_url + "/_sim/ledger", timeout=30).json()
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        txs = {r.id: r for r in conn.execute(text("SELECT id, retail_id, kind, state, parent_id FROM transactions"))}
        deliveries = {r.tx_id: r.state for r in conn.execute(text("SELECT tx_id, state FROM saf_entries"))}
    engine.dispose()
    problems: list[str] = []
    by_retail = {row.retail_id: row for row in txs.values() if row.kind == "purchase"}
    provider_ids = [p["id"] for p in ledger["purchases"]]
    if len(provider_ids) != len(set(provider_ids)):
        problems.append("the provider's ledger holds one purchase id twice")
    provider = {p["id"]: p for p in ledger["purchases"]}
    for pid in provider:
        row = txs.get(pid)
        if row is None:
            problems.append(f"provider purchase {pid} is missing from the journal")
        elif row.state not in ("approved", "confirmed", "reversed"):
            problems.append(f"provider purchase {pid} is {row.state} in the journal")
    delivered_advices = {(a["requestId"], a["id"]) for a in ledger["advices"]}
    delivered_requests = {a["requestId"] for a in ledger["advices"]}
    advices = 0
    for outcome in outcomes:
        row = by_retail.get(outcome.retail_id)
        if row is None:
            if outcome.tokens:
                problems.append(f"retail purchase {outcome.retail_id} got tokens but is not in the journal")
            continue
        if outcome.tokens is not None:
            issued = provider.get(row.id)
            if issued is None or [t["token"] if isinstance(t, dict) else t for t in issued["tokens"]] != outcome.tokens:
                problems.append(f"retail purchase {outcome.retail_id}: the till's tokens are not the provider's")
        for advice_id, _kind in outcome.advices:
            advices += 1
            advice_rows = [t for t in txs.values() if t.parent_id == row.id and t.retail_id == advice_id]
            if not advice_rows:
                problems.append(f"acknowledged advice {advice_id} is not in the journal")
                continue
            if deliveries.get(advice_rows[0].id) != "delivered":
                problems.append(f"acknowledged advice {advice_id} not delivered ({deliveries.get(advice_rows[0].id)})")
            elif (row.id, advice_rows[0].id) not in delivered_advices and row.id not in delivered_requests:
                problems.append(f"acknowledged advice {advice_id} is not in the provider's ledger")
    stats = {"advices": advices, "provider_purchases": len(provider)}
    return problems, stats


def run(kills: int, seed: int, database_url: str | None = None, tills: int = 8) -> Report:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xhuma-crash-") as folder:
        workdir = Path(folder)
        url = database_url or f"sqlite:///{workdir / 'xhuma.db'}"
        processes = Processes(workdir, url, seed)
        try:
            outcomes = asyncio.run(drive(processes, kills, seed, tills))
            wait_drained(url)
            problems, stats = compare(url, f"http://127.0.0.1:{processes.sim_port}", outcomes)
        except Exception:
            for log in workdir.glob("*.log"):
                print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            processes.stop()
    return Report(
        seed,
        kills,
        len(outcomes),
        sum(1 for o in outcomes if o.tokens is not None),
        sum(1 for o in outcomes if o.declined),
        stats["advices"],
        stats["provider_purchases"],
        time.monotonic() - started,
        problems,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tills", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    report = run(args.kills, args.seed, args.database_url, args.tills)
    print(report.summary())
    for problem in report.problems:
        print("PROBLEM:", problem)
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
