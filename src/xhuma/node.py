"""One running xhuma process: the database, journal, providers, switch and (optionally) a
store-and-forward worker, wired together. `xhuma serve` and `xhuma saf work` both build one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from xhuma.config import Settings
from xhuma.eft.delivery import EftDeliverer, close_window, release_due
from xhuma.eft.intake import take_inbox
from xhuma.eft.outbox import write_outbox, write_secfail_outbox
from xhuma.engine.flow import Institution
from xhuma.ppu.delivery import PpuDeliverer, recover_stale_purchases
from xhuma.ppu.switch import PpuSwitch
from xhuma.providers import VOUCHER_KINDS, build_adapter
from xhuma.providers.http import JsonHttpAdapter
from xhuma.providers.suv_v1 import SuvV1Adapter
from xhuma.routing import Router
from xhuma.routing.refresh import refresh_stale
from xhuma.saf.worker import Deliverer, SafWorker
from xhuma.security.credentials import Authenticator
from xhuma.security.oauth import TokenService
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import Journal
from xhuma.vouchers.delivery import VoucherDeliverer, recover_stale_vouchers
from xhuma.vouchers.switch import VoucherSwitch

log = logging.getLogger("xhuma.node")


class Node:
    def __init__(self, settings: Settings, *, run_worker: bool, watch_providers: bool = False) -> None:
        """`watch_providers`: run the active health check and the contract table's refresh
        (servers do; one-off commands and dedicated workers need not)."""
        self.settings = settings
        self.watch_providers = watch_providers
        self.db = Database(settings.database_url)
        self.journal = Journal(self.db)
        self.router = Router(
            (build_adapter(p) for p in settings.providers if p.kind not in VOUCHER_KINDS),
            self.db,
            weights={p.name: p.weight for p in settings.providers},
        )
        institution = Institution(settings.institution_id, settings.institution_name)
        self.switch = PpuSwitch(
            self.journal,
            self.router,
            institution,
            broadcast_timeout=settings.broadcast_timeout_seconds,
        )
        self.vouchers = VoucherSwitch(
            self.journal,
            {p.name: SuvV1Adapter(p) for p in settings.providers if p.kind in VOUCHER_KINDS},
            institution,
        )
        self.auth = Authenticator(self.db, cache_seconds=settings.credential_cache_seconds)
        self.tokens = TokenService(self.db, lifetime_seconds=settings.token_seconds)
        deliverers: list[Deliverer] = [PpuDeliverer(self.switch), VoucherDeliverer(self.vouchers)]
        bank = settings.eft.bank
        self.bank = JsonHttpAdapter(bank) if bank is not None else None
        if self.bank is not None:
            deliverers.append(EftDeliverer(self.bank))
        self.worker = SafWorker(self.db, deliverers, settings.saf) if run_worker else None
        if self.worker is not None:
            self.switch.on_enqueued = self.vouchers.on_enqueued = self.worker.wake
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False

    async def start(self) -> None:
        await asyncio.to_thread(_while_the_database_settles, self.db)
        if self.worker is not None:
            self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
            self._every(self.settings.recovery_interval_seconds, self._recover_stale, "recovering stale purchases")
            if self.bank is not None:
                self._every(self.settings.eft.release_seconds, self._release_eft, "releasing due EFT transactions")
        if self.watch_providers and self.settings.eft.inbox is not None:
            self._every(self.settings.eft.release_seconds, self._take_inbox, "taking EFT files from the inbox")
        if self.watch_providers and any(p.inbox is not None for p in self.settings.processes):
            seconds = self.settings.finance_intake_seconds
            self._every(seconds, self._take_finance_inboxes, "taking reconciliation files from the inboxes")
        if self.watch_providers and self.settings.eft.outbox is not None:
            self._every(self.settings.eft.output_seconds, self._write_outputs, "writing EFT output files")
        if self.watch_providers and self.settings.health_check_seconds > 0:
            self._every(self.settings.health_check_seconds, self.router.check_health, "checking provider health")
        if self.watch_providers and self.settings.routing_refresh_days > 0:
            period = self.settings.routing_refresh_days * 86400
            self._every(max(1.0, min(3600.0, period / 4)), self._refresh_routing, "refreshing the contract table")
        self.ready = True

    async def stop(self) -> None:
        """Stop claiming and polling; the worker settles the deliveries it holds, for up to
        `drain_seconds` (a delivery still unsettled then is cancelled, and its entry is taken
        over when its lease runs out)."""
        self.ready = False
        self._stop.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.drain_seconds)
        for task in self._tasks:
            task.cancel()
        await self.router.close()
        for adapter in [*self.vouchers.adapters.values(), *([self.bank] if self.bank else [])]:
            await adapter.close()
        self.db.close()

    def _every(self, seconds: float, work: Callable[[], Awaitable[object]], what: str) -> None:
        """Run `work` now and then every `seconds` until the node stops; a failed round is
        logged and the next one tries again."""

        async def loop() -> None:
            while not self._stop.is_set():
                try:
                    await work()
                except Exception:  # noqa: BLE001 - try again on the next round
                    log.exception("%s failed", what)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=seconds)

        self._tasks.append(asyncio.create_task(loop()))

    async def _recover_stale(self) -> None:
        """Purchases and voucher requests (provisions, redemptions, refunds) a dead process left
        in flight become unknown and are retrieved, or become open exceptions."""
        timeouts = [p.deadline_seconds for p in self.settings.providers] or [60.0]
        older_than_us = int((max(timeouts) + 5) * 1e6)
        recovered = await self.db.run(recover_stale_purchases(self.switch, older_than_us))
        recovered += await self.db.run(recover_stale_vouchers(self.vouchers, older_than_us))
        if recovered:
            self.switch.on_enqueued()

    async def _take_inbox(self) -> None:
        inbox = self.settings.eft.inbox
        assert inbox is not None
        inbox.mkdir(parents=True, exist_ok=True)
        for result in await asyncio.to_thread(take_inbox, self.db.engine, inbox, self.settings.eft.debit_release):
            log.info("EFT file %s: %s %s", result.file_id, result.state, result.reason or "")

    async def _take_finance_inboxes(self) -> None:
        """Files are read and checked on a worker thread; their database steps run on the
        database threads (`on_database_threads`), never on the event loop."""
        from xhuma.finance import intake  # DuckDB is loaded only by a node that reconciles

        run = intake.on_database_threads(self.db, asyncio.get_running_loop())
        for process in self.settings.processes:
            if process.inbox is not None:
                for taken in await asyncio.to_thread(intake.take_inbox, run, process):
                    log.info("%s: file %s %s: %s", process.name, taken.name, taken.file_id, taken.status)

    async def _write_outputs(self) -> None:
        """The next UNPAIDS and SECFAIL files, when there is anything to put in them."""
        eft = self.settings.eft
        assert eft.outbox is not None
        today = datetime.now(UTC).date()
        for write in (write_outbox, write_secfail_outbox):
            written = await asyncio.to_thread(
                write, self.db.engine, eft.outbox, today=today, sender=eft.sender_code, destination=eft.clearing_code
            )
            if written is not None:
                log.info("wrote %s", written)

    async def _release_eft(self) -> None:
        """Queue the EFT transactions that are due, and close the window on overdue ones."""
        eft = self.settings.eft
        assert eft.bank_url is not None
        while await self.db.run(release_due(eft.bank_url, eft.bank_member_id)):
            self.switch.on_enqueued()
        await self.db.run(close_window(int(eft.window_seconds * 1e6)))

    async def _refresh_routing(self) -> None:
        older_than = self.settings.routing_refresh_days * 86400
        meters = await refresh_stale(self.db, self.switch.lookups.rebroadcast, older_than)
        if meters:
            log.info("refreshed the contract table for %d meters", len(meters))


STARTUP_ATTEMPTS = 6


def _while_the_database_settles(db: Database) -> None:
    """Migrate and start the database threads, again if the database drops a connection meanwhile
    (a restart, a failover, an operator's pg_terminate_backend): both steps may run twice, and a
    process that gave up at its first dropped connection would leave its port dark."""
    for attempt in range(STARTUP_ATTEMPTS):
        try:
            migrate(db.engine)
            db.start()
            return
        except OperationalError:
            if attempt == STARTUP_ATTEMPTS - 1:
                raise
            log.warning("the database dropped a connection while starting; trying again", exc_info=True)
            db.engine.dispose()
            time.sleep(0.2 * 2**attempt)
