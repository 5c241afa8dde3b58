"""Choosing providers for a transaction: the contract table (which provider supports which
meter), the operator's preferences per municipality, load-balancing weights, and what this
process has seen of each provider's availability."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from xhuma.domain.routing import order_providers
from xhuma.domain.transactions import Kind
from xhuma.providers.base import ProviderAdapter
from xhuma.routing import contracts
from xhuma.storage.db import Database

CAPABILITY_NEEDED = {
    Kind.TRIAL_PURCHASE: "trial",
    Kind.REPRINT: "reprint",
    Kind.FAULT_REPORT: "fault_report",
    Kind.KEY_CHANGE: "key_change",
}


@dataclass
class Availability:
    """A circuit breaker per provider: after `threshold` failures in a row (no answer, 5xx) a
    provider is skipped for `cooldown` seconds, then one request probes it (half-open).

    Kept in process memory on purpose: it is an observation, not a fact the system must agree
    on, and each node learns it within a few requests."""

    threshold: int = 5
    cooldown: float = 5.0
    failures: dict[str, int] = field(default_factory=dict)
    open_until: dict[str, float] = field(default_factory=dict)

    def is_available(self, provider: str) -> bool:
        until = self.open_until.get(provider)
        if until is None:
            return True
        if time.monotonic() >= until:
            # Half-open: let one request through; its outcome closes or re-opens the breaker.
            self.open_until[provider] = time.monotonic() + self.cooldown
            return True
        return False

    def observe(self, provider: str, healthy: bool) -> None:
        if healthy:
            self.failures.pop(provider, None)
            self.open_until.pop(provider, None)
            return
        count = self.failures.get(provider, 0) + 1
        self.failures[provider] = count
        if count >= self.threshold:
            self.open_until[provider] = time.monotonic() + self.cooldown


@dataclass(frozen=True)
class RoutePlan:
    ordered: list[ProviderAdapter]
    """Providers known to support the meter and able to do the operation, best first."""
    unasked: list[ProviderAdapter]
    """Providers whose support for the meter is not known yet (never asked, or no answer)."""
    municipality: str | None
    known_elsewhere: bool
    """Some provider supports the meter, but none of them can do this operation."""


class Router:
    def __init__(
        self,
        adapters: Iterable[ProviderAdapter],
        db: Database,
        *,
        weights: dict[str, float] | None = None,
        availability: Availability | None = None,
        seed: int | None = None,
    ) -> None:
        self.adapters = {a.name: a for a in adapters}
        self.db = db
        self.weights = weights or {}
        self.availability = availability or Availability()
        self._rng = random.Random(seed)

    def capable(self, kind: Kind) -> list[ProviderAdapter]:
        capability = CAPABILITY_NEEDED.get(kind)
        return [a for a in self.adapters.values() if a.config.supports(capability)]

    async def plan(self, kind: Kind, meter_id: str) -> RoutePlan:
        known = (
            await self.db.run(contracts.load(meter_id))
            if self.db
            else contracts.MeterContracts({}, None, {}, frozenset())
        )
        capable = {a.name: a for a in self.capable(kind)}
        supported = known.with_status(contracts.SUPPORTED)
        order = order_providers(
            [p for p in supported if p in capable],
            preferences=known.preferences,
            excluded=known.excluded,
            weights=self.weights,
            available=[p for p in capable if self.availability.is_available(p)],
            rng=self._rng,
        )
        unasked = [
            a
            for name, a in self.adapters.items()
            if known.statuses.get(name, contracts.UNCONFIRMED) == contracts.UNCONFIRMED and name not in known.excluded
        ]
        return RoutePlan(
            ordered=[capable[p] for p in order],
            unasked=unasked,
            municipality=known.municipality,
            known_elsewhere=bool(supported) and not order,
        )

    def by_name(self, name: str | None) -> ProviderAdapter | None:
        return self.adapters.get(name) if name else None

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
