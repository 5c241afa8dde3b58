"""What the benchmarks share: starting real server processes, and a closed-loop load generator
that runs in the benchmark's own process (never inside a server)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

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
    args: list[str], environment: dict[str, str], log: Path, health_port: int | None = None
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "xhuma", *args], env=environment, stdout=handle, stderr=handle)
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


def meter_for(number: int) -> str:
    return f"{50_000_000_000 + number % 100_000:011d}"
