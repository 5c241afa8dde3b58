"""What the benchmarks share: starting real server processes, and a closed-loop load generator
that runs in the benchmark's own process (never inside a server)."""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    args: list[str], environment: dict[str, str], log: Path, health_port: int | None = None, module: str = "xhuma"
) -> subprocess.Popen[bytes]:
    """`python -m module args...` (xhuma's CLI, or a benchmark's own server such as bench.proxy),
    waiting for GET /health on `health_port` to answer 200 when one is given."""
    handle = log.open("wb")
    process = subprocess.Popen([sys.executable, "-m", module, *args], env=environment, stdout=handle, stderr=handle)
    if health_port is not None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=0.5).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not healthy: {log}")
    return process


def add_client(environment: dict[str, str], username: str = "bench", password: str = "bench-pw") -> None:
    """The API credential the load generator authenticates with, client id = username."""
    command = ["clients", "add", "--username", username, "--password", password, "--client-id", username]
    subprocess.run([sys.executable, "-m", "xhuma", *command], env=environment, check=True, capture_output=True)


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LoadResult:
    done: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


async def closed_loop(operation: Callable[[int], Awaitable[bool]], concurrency: int, seconds: float) -> LoadResult:
    """`concurrency` clients, each sending its next request as soon as the last one answered."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0
    counter = 0

    async def client() -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            counter += 1
            started = time.perf_counter()
            ok = await operation(counter)
            latencies.append((time.perf_counter() - started) * 1000)
            if not ok:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return LoadResult(len(latencies) - errors, errors, time.perf_counter() - started, latencies)


def start_proxy(upstream_port: int, environment: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The bare pass-through proxy (`bench.proxy`) in front of a simulator: the floor."""
    port = free_port()
    args = ["--port", str(port), "--upstream", f"http://127.0.0.1:{upstream_port}"]
    return start(args, environment, log, port, module="bench.proxy"), port


def ratio_row(label: str, direct: LoadResult, floor: LoadResult, through: LoadResult) -> str:
    """One level of a three-target benchmark: each target's rate and p50/p99, then xhuma's
    rate as a fraction of the proxy's and the direct one's, and what xhuma adds over the proxy."""
    cells = " | ".join(f"{r.rate:>8.0f} {r.p50:>6.1f} {r.percentile(99):>7.1f}" for r in (direct, floor, through))
    errors = direct.errors + floor.errors + through.errors
    return (
        f"{label:>5} | {cells} | {through.rate / floor.rate:>7.2f} {through.rate / direct.rate:>7.2f} | "
        f"{through.p50 - floor.p50:>9.1f} {through.percentile(99) - floor.percentile(99):>9.1f}"
        + (f"  (errors: direct {direct.errors}, proxy {floor.errors}, xhuma {through.errors})" if errors else "")
    )


def ratio_header(label: str, unit: str = "flows/s") -> str:
    target = f"{unit:>8} {'p50':>6} {'p99':>7}"
    return (
        f"{'':>5} | {'direct':^23} | {'bare proxy':^23} | {'xhuma':^23} | {'xhuma / ...':^15} "
        f"| {'added over proxy':^19}\n"
        f"{label:>5} | {target} | {target} | {target} | {'proxy':>7} {'direct':>7} | {'p50 ms':>9} {'p99 ms':>9}"
    )


Flow = Callable[["aiohttp.ClientSession", str, int], Awaitable[bool]]


async def measure(flow: Flow, base: str, concurrency: int, seconds: float) -> LoadResult:
    """`flow` in a closed loop against `base` as the `bench` credential, after a short warm-up."""
    import aiohttp

    auth = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": auth}) as session:
        await closed_loop(lambda n: flow(session, base, n), concurrency, min(1.0, seconds))  # warm-up
        return await closed_loop(lambda n: flow(session, base, n), concurrency, seconds)


def meter_for(number: int) -> str:
    return f"{50_000_000_000 + number % 100_000:011d}"
