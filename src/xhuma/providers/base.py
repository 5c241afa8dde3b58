"""The provider-adapter interface.

The engine works on canonical messages of each interface (no interface's types appear here).
An adapter turns one into the exact bytes its provider expects (`prepare`, given the
interface's operation), which the engine journals before anything leaves, then sends them and
classes the answer (`send`). A provider
with another wire format gets its own module that maps both ways; the switch never sees it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from xhuma.domain.outcomes import Outcome, judge_money_answer
from xhuma.providers.oauth_client import OAuthClientSettings
from xhuma.tls import ClientTlsFiles

CAPABILITIES = frozenset({"retry", "reprint", "advice", "trial", "fault_report", "key_change", "redemption", "refund"})
"""What a provider may or may not do beyond lookups and purchases (or voucher provisions),
which all of them do."""


class WireOperation(Protocol):
    """An interface operation as the HTTP client needs to know it (PPU's and SUV's both are)."""

    @property
    def name(self) -> str: ...

    @property
    def success_status(self) -> int: ...


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    kind: str = "ppu_v3"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 256
    capabilities: frozenset[str] = CAPABILITIES
    weight: float = 1.0
    """Share of traffic among providers with no preference set (relative to the others)."""
    health_url: str | None = None
    """Polled by the active health check (GET; 200 means up), when set."""
    receiver_ids: tuple[str, ...] = ()
    """A voucher provider's receiver institution ids: a provision with no product that names
    one of them as its `receiver` is issued by this provider."""
    default_product_code: str | None = None
    """The product code sent to a voucher provider for a provision routed by its receiver
    (None: the provision goes without a product, as SUV allows)."""
    tls: ClientTlsFiles | None = None
    """The CA bundle for an https:// provider and the client certificate for mutual TLS (None:
    the system's CAs, no client certificate)."""
    oauth: OAuthClientSettings | None = None
    """OAuth2 bearer tokens instead of Basic auth, fetched from the provider's token URL."""
    signing_key: Path | None = None
    """Sign every request's body (`x-jwt-signature`, see `xhuma.security.message_signing`)."""

    @property
    def deadline_seconds(self) -> float:
        """The most one upstream request may take, connecting and every read together; leases
        and the recovery of stale requests must outlast it, or a live request is taken over."""
        return self.read_timeout

    def supports(self, capability: str | None) -> bool:
        return capability is None or capability in self.capabilities


@dataclass(frozen=True)
class UpstreamCall:
    """One request exactly as it will go on the wire."""

    operation: WireOperation
    method: str
    url: str
    body: bytes


@dataclass(frozen=True)
class UpstreamAnswer:
    outcome: Outcome
    status: int | None
    """HTTP status, or None when nothing came back."""
    body: bytes
    elapsed_us: int
    payload: dict[str, Any] | None = None
    """The canonical response, when the body could be read as one."""
    transport_error: str | None = None
    delivered: bool = True
    """False only when the request certainly never reached the provider (connect failed)."""

    @property
    def error_type(self) -> str | None:
        if self.payload is not None:
            value = self.payload.get("errorType")
            return value if isinstance(value, str) else None
        return None

    def for_money(self, *, retrieving: bool, has_goods: bool) -> UpstreamAnswer:
        """This answer as judged for a request that moves money (`judge_money_answer`)."""
        outcome = judge_money_answer(
            self.outcome,
            self.status,
            self.error_type,
            retrieving=retrieving,
            has_goods=has_goods,
            reached=self.delivered,
        )
        return self if outcome is self.outcome else replace(self, outcome=outcome)


class ProviderAdapter(Protocol):
    config: ProviderConfig

    @property
    def name(self) -> str: ...

    def prepare(self, operation: Any, message: dict[str, Any], request_id: str | None = None) -> UpstreamCall: ...

    async def send(self, call: UpstreamCall) -> UpstreamAnswer: ...

    async def check_health(self) -> bool: ...

    async def close(self) -> None: ...
