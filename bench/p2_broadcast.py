"""P2: broadcast lookups of unseen meters across the ten-provider fleet.

For each lookup of a meter nobody has answered for, the benchmark itself first broadcasts the
same lookup straight to all ten simulated providers (aiohttp, this process) and notes when the
first supporting answer and the slowest answer arrived; then it asks xhuma. Side by side:
- a meter some providers serve: xhuma vs the first supporting provider;
- a meter nobody serves: xhuma vs the slowest provider (it must hear everyone out);
- the same with one provider hung: xhuma vs the broadcast timeout.

    python -m bench.p2_broadcast [--lookups 40] [--timeout 0.5]"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import add_client, env, free_port, start, stop
from xhuma.ppu.examples import retail_message

PROVIDERS = [
    "ipay",
    "ontec",
    "bluelabel",
    "easypay",
    "contour",
    "syntell",
    "kazang",
    "switchone",
    "sandulela",
    "racellular",
]
PREFIXES = ["101", "102", "201", "202", "301", "401", "402", "501", "601", "701", "801", "901"]


async def direct_broadcast(session: aiohttp.ClientSession, fleet: str, meter: str) -> tuple[float | None, float]:
    """(first supporting answer, last answer) in ms, asking every provider directly."""
    started = time.perf_counter()
    first: float | None = None

    async def ask(provider: str) -> None:
        nonlocal first
        message = retail_message("bench", meter={"meterId": meter})
        url = f"{fleet}/{provider}/prepaidutility/v3/meterLookups/{message['id']}"
        async with session.post(url, json=message) as r:
            await r.read()
            if r.status == 201 and first is None:
                first = (time.perf_counter() - started) * 1000

    await asyncio.gather(*(ask(p) for p in PROVIDERS))
    return first, (time.perf_counter() - started) * 1000


async def via_xhuma(session: aiohttp.ClientSession, switch: str, meter: str) -> tuple[int, float]:
    message = retail_message("bench", meter={"meterId": meter})
    started = time.perf_counter()
    async with session.post(f"{switch}/prepaidutility/v3/meterLookups/{message['id']}", json=message) as r:
        await r.read()
        return r.status, (time.perf_counter() - started) * 1000


async def run(fleet: str, switch: str, lookups: int, broadcast_timeout: float) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-pw").decode()}
    async with aiohttp.ClientSession(headers=auth) as session:
        rows = []
        for scenario in ("served", "nobody", "hung"):
            if scenario == "hung":
                async with session.post(f"{fleet}/syntell/_sim/config", json={"mode": "hang"}) as r:
                    assert r.status == 200
            gaps, ours, theirs = [], [], []
            for n in range(lookups):
                prefix = {"served": PREFIXES[n % len(PREFIXES)], "nobody": "999", "hung": "998"}[scenario]
                meter = f"{prefix}{n:08d}"
                first, last = (
                    (None, broadcast_timeout * 1000)
                    if scenario == "hung"
                    else await direct_broadcast(session, fleet, meter)
                )
                status, took = await via_xhuma(session, switch, meter)
                assert status == (201 if scenario == "served" else 400), status
                reference = first if scenario == "served" else last
                assert reference is not None
                ours.append(took)
                theirs.append(reference)
                gaps.append(took - reference)
            label = {
                "served": "served meter vs first supporting provider",
                "nobody": "meter nobody serves vs slowest provider",
                "hung": f"nobody serves, one provider hung, vs the {broadcast_timeout:g} s timeout",
            }[scenario]
            rows.append(
                (
                    label,
                    statistics.median(theirs),
                    statistics.median(ours),
                    statistics.median(gaps),
                    sorted(gaps)[int(0.9 * (len(gaps) - 1))],
                )
            )
        print(f"{'scenario':<58} {'reference ms':>12} {'xhuma ms':>9} {'gap p50':>8} {'gap p90':>8}")
        for label, reference, ours_ms, gap50, gap90 in rows:
            print(f"{label:<58} {reference:>12.1f} {ours_ms:>9.1f} {gap50:>8.1f} {gap90:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=0.5, help="the switch's broadcast timeout, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xhuma-p2-") as folder:
        work = Path(folder)
        fleet_port, port = free_port(), free_port()
        providers = work / "providers.toml"
        environment = env(XHUMA_DATABASE_URL=f"sqlite:///{work / 'xhuma.db'}")
        fleet = start(
            ["simulate", "fleet", "--port", str(fleet_port), "--seed", "2", "--config-out", str(providers)],
            environment,
            work / "fleet.log",
            fleet_port,
        )
        config = work / "xhuma.toml"
        config.write_text(f"[switch]\nbroadcast_timeout_seconds = {args.timeout}\n\n" + providers.read_text())
        environment["XHUMA_CONFIG"] = str(config)
        add_client(environment)
        switch = start(["serve", "--port", str(port)], environment, work / "switch.log", port)
        try:
            print(f"P2 broadcast lookups, {args.lookups} per scenario, ten providers (latency 9-30 ms)")
            asyncio.run(run(f"http://127.0.0.1:{fleet_port}", f"http://127.0.0.1:{port}", args.lookups, args.timeout))
        finally:
            stop(switch, fleet)


if __name__ == "__main__":
    main()
