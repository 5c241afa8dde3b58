"""Choosing providers for a transaction: the contract table (which provider supports which
meter), the operator's preferences per municipality, load-balancing weights, and what this
process has seen of each provider's availability."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from xhuma.domain.routing import order_providers
from xhuma.domain.transactions import Kind
from xhuma.providers.base import ProviderAdapter
from xhuma.routing import contracts
from xhuma.storage.db import Database

WEIGHTS_TTL_SECONDS = 1.0
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
    checked_down: set[str] = field(default_factory=set)

    def is_available(self, provider: str) -> bool:
        until = self.open_until.get(provider)
        if until is None:
            return True
        if time.monotonic() >= until:
            # Half-open: let one request through; its outcome closes or re-opens the breaker.
            self.open_until[provider] = time.monotonic() + self.cooldown
            return True
        return False

    def checked(self, provider: str, healthy: bool) -> None:
        """What the active health check found. A failed check takes the provider out at once; a
        passed one brings back only a provider that a check took out (a breaker opened by real
        traffic closes only when real traffic succeeds)."""
        if not healthy:
            self.checked_down.add(provider)
            self.failures[provider] = max(self.failures.get(provider, 0), self.threshold)
            self.open_until[provider] = time.monotonic() + self.cooldown
        elif provider in self.checked_down:
            self.checked_down.discard(provider)
            self.observe(provider, True)

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
        self.configured_weights = weights or {}
        self.availability = availability or Availability()
        self._rng = random.Random(seed)
        self._weights: tuple[float, dict[str, float]] = (-1.0, {})

    async def weights(self) -> dict[str, float]:
        """Configured weights with the operator's on top, re-read at most once a second so a
        change made on any node reaches every node within a second."""
        read_at, current = self._weights
        if time.monotonic() - read_at >= WEIGHTS_TTL_SECONDS:
            current = {**self.configured_weights, **await self.db.run(contracts.weights())}
            self._weights = (time.monotonic(), current)
        return current

    def capable(self, kind: Kind) -> list[ProviderAdapter]:
        capability = CAPABILITY_NEEDED.get(kind)
        return [a for a in self.adapters.values() if a.config.supports(capability)]

    async def plan(self, kind: Kind, meter_id: str) -> RoutePlan:
        known = await self.db.run(contracts.load(meter_id))
        capable = {a.name: a for a in self.capable(kind)}
        supported = known.with_status(contracts.SUPPORTED)
        order = order_providers(
            [p for p in supported if p in capable],
            preferences=known.preferences,
            excluded=known.excluded,
            weights=await self.weights(),
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

    async def discovery_order(
        self, kind: Kind, asked: Iterable[ProviderAdapter], municipality: str | None
    ) -> list[ProviderAdapter]:
        """The order a first purchase of an unseen meter tries the providers asked about it, drawn
        once, as soon as the first answer names the municipality: as if every one of them served
        the meter, by the same rules as `plan` (preferences, exclusions, capability, weights,
        availability). A provider that then says it does not serve the meter drops out; the
        relative order of the rest is that of a draw among them alone."""
        preferences, excluded = await self.db.run(contracts.rules(municipality))
        capable = {a.name: a for a in self.capable(kind)}
        names = [a.name for a in asked if a.name in capable]
        order = order_providers(
            names,
            preferences=preferences,
            excluded=excluded,
            weights=await self.weights(),
            available=[p for p in names if self.availability.is_available(p)],
            rng=self._rng,
        )
        return [capable[p] for p in order]

    async def check_health(self) -> None:
        adapters = [a for a in self.adapters.values() if a.config.health_url]
        results = await asyncio.gather(*(a.check_health() for a in adapters))
        for adapter, healthy in zip(adapters, results, strict=True):
            self.availability.checked(adapter.name, healthy)

    def by_name(self, name: str | None) -> ProviderAdapter | None:
        return self.adapters.get(name) if name else None

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
