"""Choosing the provider for a transaction."""

from __future__ import annotations

from collections.abc import Iterable

from xhuma.domain.transactions import Kind
from xhuma.providers.base import ProviderAdapter

CAPABILITY_NEEDED = {
    Kind.TRIAL_PURCHASE: "trial",
    Kind.REPRINT: "reprint",
    Kind.FAULT_REPORT: "fault_report",
    Kind.KEY_CHANGE: "key_change",
}


class Router:
    """Picks the first configured provider able to do the operation.

    This is the single-contract policy: the contract table, broadcast lookups, preferences and
    weights replace `choose` without changing its callers."""

    def __init__(self, adapters: Iterable[ProviderAdapter]) -> None:
        self.adapters = {a.name: a for a in adapters}

    def choose(self, kind: Kind, meter_id: str | None) -> ProviderAdapter | None:
        capability = CAPABILITY_NEEDED.get(kind)
        for adapter in self.adapters.values():
            if adapter.config.supports(capability):
                return adapter
        return None

    def by_name(self, name: str | None) -> ProviderAdapter | None:
        return self.adapters.get(name) if name else None

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
