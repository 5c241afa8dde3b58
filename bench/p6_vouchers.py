"""P6: voucher provision + confirmation, closed loop: straight to the voucher simulator, through
the bare pass-through proxy (`bench.proxy`, the floor), and through xhuma, in one run.

Every target gets the same messages: a provision of product VCH-STREAM for 100.00 (the switch's
catalogue maps its own code VCH-STREAM to the provider's VCH-STREAM), then its confirmation.

    python -m bench.p6_vouchers [--seconds 5] [--concurrency 1,16,64] [--database-url URL]

Without --database-url the switch journals to a fresh SQLite file (WAL, synchronous=FULL)."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp

from bench.common import (
    add_client,
    env,
    free_port,
    measure,
    ratio_header,
    ratio_row,
    start,
    start_proxy,
    stop,
)
from xhuma.ppu.examples import retail_message
from xhuma.vouchers.catalogue import CSV_HEADER

PRODUCT = "VCH-STREAM"
CATALOGUE = f"{CSV_HEADER}\n{PRODUCT},Streaming credit,streaming,,variable,,5000,50000,710,,,vouchers,{PRODUCT},1\n"
AMOUNT = {"amount": 10000, "currency": "710"}


async def flow(session: aiohttp.ClientSession, base: str, number: int) -> bool:
    """One voucher sold at a till: provision it, then confirm it."""
    provision = retail_message("bench", terminal_id=f"T{number % 10_000_000:07d}", product={"productId": PRODUCT})
    provision["amounts"] = {"requestAmount": AMOUNT}
    async with session.post(f"{base}/vouchers", json=provision) as r:
        if r.status != 201:
            return False
        await r.read()
    advice = {
        "id": str(uuid.uuid4()),
        "requestId": provision["id"],
        "time": provision["time"],
        "thirdPartyIdentifiers": provision["thirdPartyIdentifiers"],
        "tenders": [{"tenderType": "CASH", "amount": AMOUNT}],
    }
    async with session.post(f"{base}/vouchers/confirmations", json=advice) as r:
        await r.read()
        return r.status == 202


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xhuma-p6-") as folder:
        work = Path(folder)
        sim_port, port = free_port(), free_port()
        config = work / "xhuma.toml"
        config.write_text(
            f'[[providers]]\nname = "vouchers"\nkind = "suv_v1"\nbase_url = "http://127.0.0.1:{sim_port}"\n'
            'username = "xhuma"\npassword = "pw"\nread_timeout = 30\n'
        )
        database_url = args.database_url or f"sqlite:///{work / 'xhuma.db'}"
        environment = env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
        simulator = start(
            ["simulate", "vouchers", "--port", str(sim_port), "--name", "vouchers", "--kind", "full"],
            environment,
            work / "sim.log",
            sim_port,
        )
        add_client(environment)
        catalogue = work / "catalogue.csv"
        catalogue.write_text(CATALOGUE)
        command = [sys.executable, "-m", "xhuma", "catalogue", "import", str(catalogue), "--client", "bench"]
        subprocess.run(command, env=environment, check=True, capture_output=True)
        proxy, proxy_port = start_proxy(sim_port, environment, work / "proxy.log")
        switch = start(["serve", "--port", str(port)], environment, work / "switch.log", port)
        try:
            backend = database_url.split(":", 1)[0]
            print(f"P6 voucher provision+confirm, closed loop, {args.seconds:g} s per cell, journal on {backend}")
            print(ratio_header("conc"))
            seconds = args.seconds
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                cells = [
                    asyncio.run(measure(flow, f"http://127.0.0.1:{target}/suv/v1", concurrency, seconds))
                    for target in (sim_port, proxy_port, port)
                ]
                print(ratio_row(str(concurrency), *cells), flush=True)
            print("latencies in ms per whole flow (2 requests); a flow holds one voucher")
        finally:
            stop(switch, proxy, simulator)


if __name__ == "__main__":
    main()
