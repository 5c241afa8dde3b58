"""The store-and-forward worker: claims due entries, hands each to the deliverer of its queue,
and settles the attempt. Several workers (threads of one process, processes, machines) may run
against one database; leases keep them from delivering an entry twice at once, and an entry
held by a worker that died is taken over when its lease runs out."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Protocol

from sqlalchemy import Connection

from xhuma.domain.delivery import Answer, Verdict, backoff_seconds, retry_verdict
from xhuma.domain.outcomes import Outcome
from xhuma.providers.base import UpstreamAnswer, UpstreamCall, WireOperation
from xhuma.saf.queue import QueuedEntry, Settlement, claim, settle, worker_identity
from xhuma.storage.db import Database, now_us
from xhuma.storage.journal import Message

log = logging.getLogger("xhuma.saf")


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    status: int | None
    error: str | None
    messages: list[Message]
    on_final: Callable[[Connection], None] | None = None
    """Run in the settling commit when the entry was delivered."""
    on_failed: Callable[[Connection, str, str], None] | None = None
    """Run in the settling commit when the entry became an exception (stopped, or too old to
    repeat), with the exception's reason and detail."""


@dataclass(frozen=True)
class Sent:
    """One queued message sent to a provider: the answer, judged, and both messages to journal."""

    answer: UpstreamAnswer
    judged: Answer
    error: str | None
    messages: list[Message]


async def send_entry(adapter: Sender, operation: WireOperation, entry: QueuedEntry) -> Sent:
    call = UpstreamCall(operation, entry.method, entry.url, entry.body.encode())
    sent = Message(
        "upstream", "request", operation.name, entry.body, now_us(), entry.method, entry.url, peer=adapter.name
    )
    answer = await adapter.send(call)
    got = Message(
        "upstream",
        "response",
        operation.name,
        answer.body.decode("utf-8", "replace") or answer.transport_error,
        now_us(),
        entry.method,
        entry.url,
        answer.status,
        answer.elapsed_us,
        adapter.name,
    )
    error = answer.transport_error or (
        None if answer.outcome is Outcome.SUCCESSFUL else f"HTTP {answer.status} {answer.error_type or ''}".strip()
    )
    judged = Answer(answer.outcome, answer.status, answer.error_type, answer.delivered)
    return Sent(answer, judged, error, [sent, got])


def judge_retrieval(sent: Sent, *, has_goods: bool) -> tuple[UpstreamAnswer, Verdict]:
    """A follow-up retry's answer, judged as any retrieval of a request that moves money: only
    a verdict on our own id ends it; anything else is asked again (and past the queue's maximum
    age a person settles it)."""
    answer = sent.answer.for_money(retrieving=True, has_goods=has_goods)
    judged = Answer(answer.outcome, answer.status, answer.error_type, answer.delivered)
    return answer, retry_verdict(judged)


class Sender(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, call: UpstreamCall) -> UpstreamAnswer: ...


class Deliverer(Protocol):
    """Sends the entries of some queues and judges the answers, by its interface's rules."""

    def handles(self, queue: str) -> bool: ...

    async def deliver(self, entry: QueuedEntry) -> Attempt: ...


@dataclass(frozen=True)
class SafSettings:
    concurrency: int = 64
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 60.0
    max_age_seconds: float = 24 * 3600.0
    lease_seconds: float = 90.0
    poll_seconds: float = 0.2
    ordered_queues: frozenset[str] = frozenset()
    windows: dict[str, tuple[time, time]] = field(default_factory=dict)
    """Per queue, the UTC times of day between which it may deliver."""

    def closed_queues(self, moment: datetime) -> list[str]:
        now = moment.time()
        closed = []
        for queue, (start, end) in self.windows.items():
            inside = start <= now < end if start <= end else (now >= start or now < end)
            if not inside:
                closed.append(queue)
        return closed


class SafWorker:
    def __init__(
        self, db: Database, deliverers: list[Deliverer], settings: SafSettings, *, seed: int | None = None
    ) -> None:
        self.db = db
        self.deliverers = deliverers
        self.settings = settings
        self.owner = worker_identity()
        self._rng = random.Random(seed)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._low_water = settings.concurrency // 2
        self._in_flight: set[asyncio.Task[None]] = set()
        self.delivered = 0

    def wake(self) -> None:
        """Called when this process queues an entry, so it goes out without waiting for a poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep up to `concurrency` deliveries in flight, refilling in bulk once half are done
        (one claim per many entries, not one per entry)."""
        while not stop.is_set():
            if len(self._in_flight) > self._low_water:
                self._room.clear()
                await _first(self._room.wait(), stop.wait())
                continue
            try:
                claimed = await self.claim_and_start()
            except Exception:  # noqa: BLE001 - the database may be briefly away; keep going
                log.exception("claiming store-and-forward entries failed")
                claimed = 0
            if claimed == 0:
                await _first(self._wake.wait(), stop.wait(), within=self.settings.poll_seconds)
                self._wake.clear()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.settings.lease_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if len(self._in_flight) <= self._low_water:
            self._room.set()

    async def claim_and_start(self) -> int:
        free = self.settings.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        entries = await self.db.run(
            claim(
                self.owner,
                free,
                int(self.settings.lease_seconds * 1e6),
                ordered=self.settings.ordered_queues,
                closed=self.settings.closed_queues(datetime.now(UTC)),
            )
        )
        for entry in entries:
            task = asyncio.create_task(self._deliver(entry))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(entries)

    async def _deliver(self, entry: QueuedEntry) -> None:
        deliverer = next((d for d in self.deliverers if d.handles(entry.queue)), None)
        if deliverer is None:
            attempt = Attempt(Verdict.REPEAT, None, f"no deliverer for queue {entry.queue}", [])
        else:
            try:
                attempt = await deliverer.deliver(entry)
            except Exception as exc:  # noqa: BLE001 - a bug in one delivery must not stop the queue
                log.exception("delivering entry %s failed", entry.id)
                attempt = Attempt(Verdict.REPEAT, None, f"{type(exc).__name__}: {exc}", [])
        delay = backoff_seconds(
            entry.attempts, self.settings.base_delay_seconds, self.settings.max_delay_seconds, self._rng
        )
        now = now_us()
        expired = attempt.verdict is Verdict.REPEAT and now - entry.created_us > self.settings.max_age_seconds * 1e6
        result = Settlement(
            attempt.verdict, attempt.status, attempt.error, now + int(delay * 1e6), attempt.messages, expired
        )
        try:
            settled = await self.db.run(settle(entry, self.owner, result, attempt.on_final, attempt.on_failed))
        except Exception:  # noqa: BLE001 - the lease runs out and the entry is tried again
            log.exception("settling entry %s failed", entry.id)
            return
        if settled and attempt.verdict is Verdict.DELIVERED:
            self.delivered += 1


async def _first(*waits: Awaitable[object], within: float | None = None) -> None:
    """Return when the first of `waits` completes (or after `within` seconds), cancelling the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
