"""One running xhuma process: the database, journal, providers, switch and (optionally) a
store-and-forward worker, wired together. `xhuma serve` and `xhuma saf work` both build one."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from xhuma.config import Settings
from xhuma.ppu.delivery import PpuDeliverer, recover_stale_purchases
from xhuma.ppu.switch import Institution, PpuSwitch
from xhuma.providers import build_adapter
from xhuma.routing import Router
from xhuma.saf.worker import SafWorker
from xhuma.security.credentials import Authenticator
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import Journal

log = logging.getLogger("xhuma.node")


class Node:
    def __init__(self, settings: Settings, *, run_worker: bool) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.journal = Journal(self.db)
        self.router = Router(
            (build_adapter(p) for p in settings.providers),
            self.db,
            weights={p.name: p.weight for p in settings.providers},
        )
        self.switch = PpuSwitch(
            self.journal,
            self.router,
            Institution(settings.institution_id, settings.institution_name),
            broadcast_timeout=settings.broadcast_timeout_seconds,
        )
        self.auth = Authenticator(self.db, cache_seconds=settings.credential_cache_seconds)
        self.worker = SafWorker(self.db, [PpuDeliverer(self.switch)], settings.saf) if run_worker else None
        if self.worker is not None:
            self.switch.on_enqueued = self.worker.wake
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.db.engine)
        self.db.start()
        if self.worker is not None:
            self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
            self._tasks.append(asyncio.create_task(self._recover_stale()))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self._stop.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for task in self._tasks:
            task.cancel()
        await self.router.close()
        self.db.close()

    async def _recover_stale(self) -> None:
        """Purchases a dead process left in flight become unknown and are retrieved."""
        timeouts = [p.read_timeout for p in self.settings.providers] or [60.0]
        older_than_us = int((max(timeouts) + 5) * 1e6)
        while not self._stop.is_set():
            try:
                if await self.db.run(recover_stale_purchases(self.switch, older_than_us)):
                    self.switch.on_enqueued()
            except Exception:  # noqa: BLE001 - try again on the next round
                log.exception("recovering stale purchases failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.recovery_interval_seconds)
