"""The response echo rule of Electrum's interfaces (§1.6), shared by the PPU and SUV switches:
an answer carries the request's own `id`, `time`, parties and third-party identifiers, with
the identifiers of each institution that handled it added, never altered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ECHO_FIELDS = ("id", "time", "originator", "client", "settlementEntity", "receiver", "thirdPartyIdentifiers")


def echo(
    payload: dict[str, Any], request: dict[str, Any], ours: dict[str, str], fields: Sequence[str] = ECHO_FIELDS
) -> dict[str, Any]:
    """A provider's answer with our retailer's echo `fields` put back and our identifier added."""
    body = dict(payload)
    _put_back(body, request, fields)
    identifiers = [*request["thirdPartyIdentifiers"], ours]
    seen = {entry.get("institutionId") for entry in identifiers}
    for entry in payload.get("thirdPartyIdentifiers") or []:
        if isinstance(entry, dict) and entry.get("institutionId") not in seen:
            identifiers.append(entry)
    body["thirdPartyIdentifiers"] = identifiers
    return body


def restamp(stored: dict[str, Any], request: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A journalled answer, re-addressed to a retry's (or reprint's) own echo fields."""
    body = dict(stored)
    if "errorType" in body:
        body["id"] = message_id
        return body
    added = [e for e in body.get("thirdPartyIdentifiers", []) if e not in request["thirdPartyIdentifiers"]]
    _put_back(body, request, ECHO_FIELDS)
    body["thirdPartyIdentifiers"] = [*request["thirdPartyIdentifiers"], *added]
    return body


def _put_back(body: dict[str, Any], request: dict[str, Any], fields: Sequence[str]) -> None:
    for name in fields:
        if name in request:
            body[name] = request[name]
        else:
            body.pop(name, None)
