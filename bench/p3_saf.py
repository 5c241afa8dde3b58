"""P3: store-and-forward deliveries per second, beside the receiver's direct intake.

The receiver is the simulated provider, which accepts a confirmation at once. In one run:
- direct: this process posts N confirmations straight to it (aiohttp, concurrency 64);
- through the queue: N confirmation entries are committed to the queue in one transaction and
  a separate `xhuma saf work` process delivers them (journalling each attempt); timed from the
  commit to the last delivery.

    python -m bench.p3_saf [--entries 10000] [--rounds 3] [--concurrency 128] [--database-url URL]"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import text

from bench.common import env, free_port, meter_for, start, stop
from xhuma.domain.transactions import Kind, State
from xhuma.ppu.examples import retail_message
from xhuma.saf.queue import enqueue
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import NewTransaction, open_transaction

BASE = "/prepaidutility/v3"


async def buy(sim: str, count: int) -> list[str]:
    """Purchases at the provider, so that it accepts confirmations for them."""
    ids: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def one(n: int) -> None:
            message = retail_message(
                "xhuma", meter={"meterId": meter_for(n)}, purchaseAmount={"amount": 1000, "currency": "710"}
            )
            async with session.post(f"{sim}{BASE}/tokenPurchases/{message['id']}", json=message) as r:
                assert r.status == 201, await r.text()
            ids.append(message["id"])

        for start_at in range(0, count, 1000):
            await asyncio.gather(*(one(n) for n in range(start_at, min(count, start_at + 1000))))
    return ids


def confirmation(purchase_id: str) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "requestId": purchase_id,
        "time": "2026-11-22T10:00:00.000Z",
        "thirdPartyIdentifiers": [],
        "tenders": [{"tenderType": "CASH", "amount": {"amount": 1000, "currency": "710"}}],
    }


async def direct(sim: str, purchase_ids: list[str]) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for pid in purchase_ids:
            queue.put_nowait(pid)

        async def client() -> None:
            while not queue.empty():
                advice = confirmation(queue.get_nowait())
                url = f"{sim}{BASE}/tokenPurchases/{advice['requestId']}/confirmations/{advice['id']}"
                async with session.post(url, json=advice) as r:
                    await r.read()
                    assert r.status == 202

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(64)))
        return len(purchase_ids) / (time.perf_counter() - started)


def through_queue(db: Database, sim: str, purchase_ids: list[str]) -> float:
    def fill(conn):  # type: ignore[no-untyped-def]
        for pid in purchase_ids:
            tx_id = str(uuid.uuid4())
            open_transaction(NewTransaction(tx_id, "bench", tx_id, Kind.CONFIRMATION, State.ACCEPTED), [])(conn)
            advice = confirmation(pid)
            advice["id"] = tx_id
            url = f"{sim}{BASE}/tokenPurchases/{pid}/confirmations/{tx_id}"
            enqueue("ppu:sim", tx_id, "confirmTokenPurchase", "POST", url, json.dumps(advice))(conn)

    db.run_sync(fill)
    started = time.perf_counter()
    while True:
        pending = db.run_sync(
            lambda c: c.execute(text("SELECT count(*) FROM saf_entries WHERE state = 'pending'")).scalar()
        )
        if pending == 0:
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    failed = db.run_sync(
        lambda c: c.execute(text("SELECT count(*) FROM saf_entries WHERE state <> 'delivered'")).scalar()
    )
    assert failed == 0, f"{failed} entries not delivered"
    return len(purchase_ids) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--concurrency", type=int, default=128, help="deliveries in flight in the worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xhuma-p3-") as folder:
        work = Path(folder)
        sim_port = free_port()
        sim = f"http://127.0.0.1:{sim_port}"
        config = work / "xhuma.toml"
        config.write_text(
            f'[[providers]]\nname = "sim"\nbase_url = "{sim}"\nread_timeout = 30\n\n'
            f"[saf]\nconcurrency = {args.concurrency}\n"
        )
        database_url = args.database_url or f"sqlite:///{work / 'xhuma.db'}"
        environment = env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
        simulator = start(["simulate", "ppu", "--port", str(sim_port)], environment, work / "sim.log", sim_port)
        db = Database(database_url)
        migrate(db.engine)
        worker = start(["saf", "work"], environment, work / "worker.log")
        try:
            print(
                f"P3 store-and-forward, {args.entries} confirmations per round, "
                f"queue on {database_url.split(':', 1)[0]}"
            )
            print(f"{'round':>5} | {'direct/s':>9} | {'queue/s':>9} | {'ratio':>5}")
            ratios, rates, directs = [], [], []
            for n in range(args.rounds):
                ids = asyncio.run(buy(sim, 2 * args.entries))
                d = asyncio.run(direct(sim, ids[: args.entries]))
                q = through_queue(db, sim, ids[args.entries :])
                ratios.append(q / d)
                rates.append(q)
                directs.append(d)
                print(f"{n + 1:>5} | {d:>9.0f} | {q:>9.0f} | {q / d:>5.2f}", flush=True)
            print(
                f"{'median':>5} | {statistics.median(directs):>9.0f} | {statistics.median(rates):>9.0f} | "
                f"{statistics.median(ratios):>5.2f}"
            )
        finally:
            stop(worker, simulator)
            db.engine.dispose()


if __name__ == "__main__":
    main()
