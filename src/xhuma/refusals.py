"""Refusals are journalled too: a retail message refused before a transaction was opened for
it leaves a row in `rejected_messages` (see `xhuma tx rejected`), written before the answer
goes out. Writing it never turns the refusal into a 500: a failure is logged and the answer
still given."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from xhuma.engine.flow import Reply
from xhuma.storage.journal import Journal, Message, Rejection
from xhuma.validation import FieldError


def error_type_of(reply: Reply) -> str | None:
    """The `errorType` of an error body (PPU and SUV both name it so)."""
    try:
        found = msgspec.json.decode(reply.body)
    except msgspec.DecodeError:
        return None
    value = found.get("errorType") if isinstance(found, dict) else None
    return value if isinstance(value, str) else None


def credentials_reason(given: tuple[str, str] | None) -> str:
    """Why a 401: no credentials at all, or which username's did not pass."""
    return "no credentials" if given is None else f"bad credentials for {given[0]}"


def field_reasons(errors: list[FieldError]) -> str:
    """A format error's reason: each bad field and what is wrong with it."""
    return "; ".join(f"field {e.field}: {e.error}" for e in errors)


async def refuse(
    journal: Journal,
    interface: str,
    operation: str,
    reply: Reply,
    reason: str,
    *,
    client_id: str | None = None,
    retail_id: str | None = None,
    received: Message | None = None,
    url: str | None = None,
) -> Reply:
    """Journal the refusal (with the request as `received`, when it was read), then give the
    reply back to be answered."""
    await journal.record_rejection(
        Rejection(
            interface=interface,
            operation=operation,
            status=reply.status,
            error_type=error_type_of(reply),
            reason=reason,
            body=received.body if received else None,
            url=received.url if received else url,
            client_id=client_id,
            retail_id=retail_id,
        )
    )
    return reply


@dataclass(frozen=True)
class Refuser:
    """One interface's refusals of a message it read (see `refuse`)."""

    journal: Journal
    interface: str

    async def __call__(
        self, received: Message, client_id: str, retail_id: str | None, reply: Reply, reason: str
    ) -> Reply:
        return await refuse(
            self.journal,
            self.interface,
            received.operation,
            reply,
            reason,
            client_id=client_id,
            retail_id=retail_id,
            received=received,
        )
