"""What /health/services and /metrics report: each service's and provider's health, and the
Prometheus text of the process's metrics with the figures read from the database.

The database is read by one op (`snapshot`) on a database thread, awaited by the event loop;
everything else here is arithmetic on its result and on what this process's router has seen
(its circuits, its health checks), on the event loop. Success rates come from the journal, so
every process reports the same rates; circuits and health checks are this process's own view."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from xhuma.domain.transactions import State
from xhuma.node import Node
from xhuma.saf import queue
from xhuma.storage.db import now_us
from xhuma.storage.tables import reconciliation_exceptions, saf_entries, transactions

HEALTHY, UNHEALTHY = "HEALTHY", "UNHEALTHY"
WINDOW_SECONDS = 300
"""The window success rates are counted over, unless the request names another."""
MIN_REQUESTS = 10
"""Fewer finished requests than this in the window say too little to judge a provider by."""
SUCCESS_THRESHOLD = 0.5
"""A provider whose share of successful requests in the window is below this is unhealthy."""
SAF_OLDEST_SECONDS = 600
"""A pending store-and-forward entry older than this makes the queue unhealthy."""
SUCCESSFUL = frozenset({State.APPROVED, State.CONFIRMED, State.REVERSED, State.ACCEPTED})
UNFINISHED = frozenset({State.RECEIVED, State.SENT_UPSTREAM})


@dataclass(frozen=True)
class Snapshot:
    """The database's figures, read in one transaction."""

    at_us: int
    by_provider: dict[str, dict[str, int]]
    """Transactions created in the window, per provider, per state."""
    saf: dict[tuple[str, str], tuple[int, int]]
    """Per (queue, state): the number of entries and the oldest one's created_us."""
    recon: dict[str, int]
    """Reconciliation exceptions per state."""


def snapshot(window_us: int) -> Callable[[Connection], Snapshot]:
    """Database thread, one read-only transaction."""

    def op(conn: Connection) -> Snapshot:
        at = now_us()
        by_provider: dict[str, dict[str, int]] = {}
        rows = conn.execute(
            select(transactions.c.provider, transactions.c.state, func.count())
            .where(transactions.c.created_us >= at - window_us, transactions.c.provider.is_not(None))
            .group_by(transactions.c.provider, transactions.c.state)
        )
        for provider, state, n in rows:
            by_provider.setdefault(provider, {})[state] = int(n)
        saf_rows = conn.execute(
            select(saf_entries.c.queue, saf_entries.c.state, func.count(), func.min(saf_entries.c.created_us)).group_by(
                saf_entries.c.queue, saf_entries.c.state
            )
        )
        saf = {(q, s): (int(n), int(oldest)) for q, s, n, oldest in saf_rows}
        recon_rows = conn.execute(
            select(reconciliation_exceptions.c.state, func.count()).group_by(reconciliation_exceptions.c.state)
        )
        return Snapshot(at, by_provider, saf, {s: int(n) for s, n in recon_rows})

    return op


def _rate(states: dict[str, int]) -> tuple[int, float | None]:
    """Finished requests and the share of them that succeeded (a business decline counts as
    unsuccessful, as on Electrum's dashboards); None when there were none."""
    finished = sum(n for state, n in states.items() if state not in UNFINISHED)
    if not finished:
        return 0, None
    return finished, sum(n for state, n in states.items() if state in SUCCESSFUL) / finished


def _provider(node: Node, name: str, service: str, found: Snapshot, window_s: int) -> dict[str, Any]:
    finished, rate = _rate(found.by_provider.get(name, {}))
    reasons: list[str] = []
    availability = node.router.availability
    if service == "ppu":
        if name in availability.checked_down:
            reasons.append("its health_url poll failed")
        elif availability.failures.get(name, 0) >= availability.threshold:
            reasons.append(f"its circuit is open ({availability.failures[name]} failures in a row)")
    if rate is not None and finished >= MIN_REQUESTS and rate < SUCCESS_THRESHOLD:
        reasons.append(f"success rate {rate:.0%} below {SUCCESS_THRESHOLD:.0%} over the last {window_s} s")
    return {
        "name": name,
        "service": service,
        "status": UNHEALTHY if reasons else HEALTHY,
        "success_rate": rate,
        "requests": finished,
        "reasons": reasons,
    }


def _queues(found: Snapshot, prefix: str = "") -> tuple[int, int | None, int]:
    """Pending entries, the oldest pending one's age in seconds, and exceptions."""
    pending = [v for (q, s), v in found.saf.items() if q.startswith(prefix) and s == queue.PENDING]
    exceptions = sum(n for (q, s), (n, _) in found.saf.items() if q.startswith(prefix) and s == queue.EXCEPTION)
    oldest = min((o for _, o in pending), default=None)
    age = (found.at_us - oldest) // 1_000_000 if oldest is not None else None
    return sum(n for n, _ in pending), age, exceptions


def _queue_reasons(found: Snapshot, prefix: str = "") -> list[str]:
    _, age, exceptions = _queues(found, prefix)
    reasons = []
    if age is not None and age > SAF_OLDEST_SECONDS:
        reasons.append(f"the oldest pending entry is {age} s old (bound {SAF_OLDEST_SECONDS} s)")
    if exceptions:
        reasons.append(f"{exceptions} entries in state exception")
    return reasons


def _service(name: str, configured: bool, reasons: list[str], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "configured": configured,
        "status": UNHEALTHY if reasons else HEALTHY,
        "reasons": reasons,
        **more,
    }


async def services_health(node: Node, window_s: int = WINDOW_SECONDS) -> dict[str, Any]:
    """The /health/services document: each service and provider, HEALTHY or UNHEALTHY and why."""
    found = await node.db.run(snapshot(window_s * 1_000_000))
    providers = [_provider(node, n, "ppu", found, window_s) for n in node.router.adapters]
    providers += [_provider(node, n, "suv", found, window_s) for n in node.vouchers.adapters]
    services = []
    for service in ("ppu", "suv"):
        own = [p for p in providers if p["service"] == service]
        down = not any(p["status"] == HEALTHY for p in own)
        finished = sum(p["requests"] for p in own)
        succeeded = sum(p["requests"] * (p["success_rate"] or 0) for p in own)
        services.append(
            _service(
                service,
                bool(own),
                ["no provider is healthy"] if own and down else [],
                success_rate=succeeded / finished if finished else None,
                requests=finished,
            )
        )
    eft = node.settings.eft
    services.append(_service("eft", eft.bank is not None or eft.inbox is not None, _queue_reasons(found, "eft:")))
    services.append(_service("finance", bool(node.settings.processes), [], open_exceptions=found.recon.get("open", 0)))
    depth, age, exceptions = _queues(found)
    services.append(
        _service("saf", True, _queue_reasons(found), pending=depth, oldest_pending_seconds=age, exceptions=exceptions)
    )
    everything = [*services, *providers]
    return {
        "status": UNHEALTHY if any(s["status"] == UNHEALTHY for s in everything) else HEALTHY,
        "window_seconds": window_s,
        "services": services,
        "providers": providers,
    }


class _FromDatabase(Collector):
    """The figures a scrape read from the database, as gauges."""

    def __init__(self, found: Snapshot) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily(
            "xhuma_saf_entries", "Store-and-forward entries per queue and state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "xhuma_saf_oldest_pending_seconds", "Age of the oldest pending entry per queue", labels=["queue"]
        )
        for (name, state), (n, first_us) in sorted(self.found.saf.items()):
            entries.add_metric([name, state], n)
            if state == queue.PENDING:
                oldest.add_metric([name], (self.found.at_us - first_us) / 1e6)
        recon = GaugeMetricFamily(
            "xhuma_reconciliation_exceptions", "Reconciliation exceptions per state", labels=["state"]
        )
        for state, n in sorted(self.found.recon.items()):
            recon.add_metric([state], n)
        yield from (entries, oldest, recon)


def multiprocess() -> bool:
    """Whether metrics are kept in files shared by this host's processes (see `xhuma.metrics`)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _process_metrics() -> bytes:
    """This process's metrics, or every process's summed (multiprocess mode, read from files)."""
    if not multiprocess():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics_text(node: Node) -> bytes:
    """The /metrics answer: the process's metrics (read off the loop: multiprocess mode reads
    files) and the database's figures (on a database thread)."""
    found = await node.db.run(snapshot(0))
    counted = await asyncio.to_thread(_process_metrics)
    registry = CollectorRegistry()
    registry.register(_FromDatabase(found))
    return counted + generate_latest(registry)
