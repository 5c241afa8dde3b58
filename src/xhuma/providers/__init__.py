"""Upstream providers: one adapter module per kind of provider, behind one interface."""

from __future__ import annotations

from xhuma.providers.base import ProviderAdapter, ProviderConfig

VOUCHER_KINDS = frozenset({"suv_v1"})
"""Provider kinds that issue vouchers; every other kind sells prepaid utilities."""


def build_adapter(config: ProviderConfig) -> ProviderAdapter:
    """The adapter for a provider's kind; each kind maps our canonical messages to its wire."""
    if config.kind == "ppu_v3":
        from xhuma.providers.ppu_v3 import PpuV3Adapter

        return PpuV3Adapter(config)
    raise ValueError(f"provider {config.name!r}: unknown kind {config.kind!r}")
