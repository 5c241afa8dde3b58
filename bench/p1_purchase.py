"""P1: lookup + purchase + confirm, closed loop: straight to the simulator, through a bare
pass-through proxy (`bench.proxy`, the floor), and through xhuma.

The three targets run as their own processes and are measured side by side in one run, level by
level, so the ratios hold even when the machine's speed drifts. The load generator is this
process (aiohttp).

    python -m bench.p1_purchase [--seconds 5] [--concurrency 1,16,64] [--database-url URL]

Without --database-url the switch journals to a fresh SQLite file (WAL, synchronous=FULL)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

import aiohttp

from bench.common import (
    add_client,
    env,
    free_port,
    measure,
    meter_for,
    ratio_header,
    ratio_row,
    start,
    start_proxy,
    stop,
)
from xhuma.ppu.examples import retail_message


async def flow(session: aiohttp.ClientSession, base: str, number: int) -> bool:
    """One customer at the till: look the meter up, buy, confirm."""
    meter = {"meterId": meter_for(number)}
    lookup = retail_message("bench", terminal_id=f"T{number % 10_000_000:07d}", meter=meter)
    async with session.post(f"{base}/meterLookups/{lookup['id']}", json=lookup) as r:
        if r.status != 201:
            return False
        await r.read()
    purchase = retail_message(
        "bench",
        terminal_id=f"T{number % 10_000_000:07d}",
        meter=meter,
        purchaseAmount={"amount": 10000, "currency": "710"},
    )
    async with session.post(f"{base}/tokenPurchases/{purchase['id']}", json=purchase) as r:
        if r.status != 201:
            return False
        bought = await r.json()
    advice = {
        "id": str(uuid.uuid4()),
        "requestId": purchase["id"],
        "time": purchase["time"],
        "thirdPartyIdentifiers": bought["thirdPartyIdentifiers"],
        "tenders": [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}],
    }
    async with session.post(f"{base}/tokenPurchases/{purchase['id']}/confirmations/{advice['id']}", json=advice) as r:
        await r.read()
        return r.status == 202


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xhuma-p1-") as folder:
        work = Path(folder)
        sim_port, port = free_port(), free_port()
        config = work / "xhuma.toml"
        config.write_text(f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{sim_port}"\nread_timeout = 30\n')
        database_url = args.database_url or f"sqlite:///{work / 'xhuma.db'}"
        environment = env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
        simulator = start(
            ["simulate", "ppu", "--port", str(sim_port), "--seed", "1"], environment, work / "sim.log", sim_port
        )
        add_client(environment)
        proxy, proxy_port = start_proxy(sim_port, environment, work / "proxy.log")
        switch = start(["serve", "--port", str(port)], environment, work / "switch.log", port)
        try:
            backend = database_url.split(":", 1)[0]
            print(f"P1 lookup+purchase+confirm, closed loop, {args.seconds:g} s per cell, journal on {backend}")
            print(ratio_header("conc"))
            seconds = args.seconds
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                cells = [
                    asyncio.run(measure(flow, f"http://127.0.0.1:{target}/prepaidutility/v3", concurrency, seconds))
                    for target in (sim_port, proxy_port, port)
                ]
                print(ratio_row(str(concurrency), *cells), flush=True)
            print("latencies in ms per whole flow (3 requests); a flow holds one purchase")
        finally:
            stop(switch, proxy, simulator)


if __name__ == "__main__":
    main()
