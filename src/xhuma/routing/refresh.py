"""The scheduled refresh of the contract table: meters no provider has spoken about for a while
are asked about again, so a provider that stopped (or started) serving a municipality is noticed.

Preferences belong to municipalities, not meters, and a refresh never touches them: a refreshed
meter keeps its municipality's preference wherever the preferred provider still serves it, and
falls to the next preferred (or weighted) provider only where it no longer does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from xhuma.routing import contracts
from xhuma.storage.db import Database

Rebroadcast = Callable[[str], Awaitable[None]]


async def refresh_stale(
    db: Database, rebroadcast: Rebroadcast, older_than_seconds: float, *, limit: int = 1000, concurrency: int = 4
) -> list[str]:
    """Re-broadcast up to `limit` stale meters, a few at a time so providers are not flooded;
    returns the meters asked about."""
    meters = await db.run(contracts.stale_meters(int(older_than_seconds * 1e6), limit))
    gate = asyncio.Semaphore(concurrency)

    async def one(meter_id: str) -> None:
        async with gate:
            await rebroadcast(meter_id)

    await asyncio.gather(*(one(m) for m in meters))
    return meters
