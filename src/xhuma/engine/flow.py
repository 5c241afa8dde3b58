"""What an interface plugs into the engine: its replies, its flow hooks, and the journal
messages every leg writes (the same shape for every interface)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from xhuma.domain.transactions import State
from xhuma.providers.base import ProviderAdapter, UpstreamAnswer, UpstreamCall, WireOperation
from xhuma.storage.db import now_us
from xhuma.storage.journal import Message

RETAIL = "retail"
UPSTREAM = "upstream"


@dataclass(frozen=True)
class Institution:
    """Who we are upstream: the client every upstream message names."""

    id: str
    name: str


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Reply:
    """An answer to a retailer, as it goes on the wire."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None


class Flow(Protocol):
    """One interface's part in the engine's request, retry and follow-up paths."""

    def moves_money(self, operation: Any) -> bool:
        """Whether the operation buys something (its answers are judged by our own id)."""
        ...

    def has_goods(self, payload: dict[str, Any] | None) -> bool:
        """Whether a successful answer carries what was bought (tokens, a voucher code)."""
        ...

    def retail_reply(
        self, operation: Any, message: Any, tx_id: str, answer: UpstreamAnswer
    ) -> tuple[Reply, str | None]:
        """The retailer's answer to an upstream answer, and the error type to journal."""
        ...

    def restamp(self, stored: str, message: Any) -> bytes:
        """A journalled retail answer re-addressed to another message's echo fields."""
        ...

    def heard(self, adapter: Any, answer: UpstreamAnswer) -> None:
        """Every answer to a request, as it arrives (event loop): what it says of the provider's
        health, for the interface's router."""
        ...

    def after_outcome(
        self, conn: Connection, operation: Any, tx_id: str, state: State, answer: UpstreamAnswer, adapter: Any
    ) -> None:
        """The interface's own rows once an outcome is journalled (queue the follow-up of an
        unknown purchase, issue or put back a voucher): database thread, same transaction,
        idempotent by our id."""
        ...

    def adapter(self, provider: str | None) -> Any:
        """The adapter of a journalled transaction's provider, or None if it is gone."""
        ...

    def retry_call(self, adapter: Any, row: dict[str, Any]) -> UpstreamCall:
        """The retry of a journalled request, under its own upstream id."""
        ...

    def cannot_retry(self, message: Any, row: dict[str, Any]) -> Reply:
        """The answer to a retry where the provider cannot retry."""
        ...

    def in_progress(self, message: Any) -> Reply:
        """The answer to a retry of a request still in flight."""
        ...


def sent(call: UpstreamCall, adapter: ProviderAdapter | Any) -> Message:
    """The upstream request, journalled before it leaves."""
    return Message(
        UPSTREAM, "request", call.operation.name, call.body.decode(), now_us(), call.method, call.url, peer=adapter.name
    )


def got(call: UpstreamCall, answer: UpstreamAnswer, adapter: ProviderAdapter | Any) -> Message:
    """The upstream answer (or what stood for it: the transport error)."""
    return Message(
        UPSTREAM,
        "response",
        call.operation.name,
        answer.body.decode("utf-8", "replace") or answer.transport_error,
        now_us(),
        call.method,
        call.url,
        answer.status,
        answer.elapsed_us,
        adapter.name,
    )


def answered(operation: WireOperation, reply: Reply, at_us: int | None = None) -> Message:
    """The retail answer, as sent."""
    return Message(RETAIL, "response", operation.name, reply.body.decode(), at_us or now_us(), status=reply.status)
