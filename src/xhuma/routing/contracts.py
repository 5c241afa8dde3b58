"""The contract table and preferences in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from xhuma.storage.db import now_us
from xhuma.storage.tables import meter_contracts, routing_audit, routing_preferences

SUPPORTED, NOT_SUPPORTED, UNCONFIRMED = "supported", "not_supported", "unconfirmed"


@dataclass(frozen=True)
class MeterContracts:
    statuses: dict[str, str]
    """provider -> status"""
    municipality: str | None
    preferences: dict[str, int]
    excluded: frozenset[str]

    def with_status(self, status: str) -> list[str]:
        return [p for p, s in self.statuses.items() if s == status]


def load(meter_id: str) -> Callable[[Connection], MeterContracts]:
    def op(conn: Connection) -> MeterContracts:
        rows = conn.execute(select(meter_contracts).where(meter_contracts.c.meter_id == meter_id)).all()
        municipality = next((r.municipality for r in rows if r.municipality), None)
        preferences: dict[str, int] = {}
        excluded: set[str] = set()
        if municipality:
            for p in conn.execute(
                select(routing_preferences).where(routing_preferences.c.municipality == municipality)
            ):
                if p.excluded:
                    excluded.add(p.provider)
                elif p.rank is not None:
                    preferences[p.provider] = p.rank
        return MeterContracts({r.provider: r.status for r in rows}, municipality, preferences, frozenset(excluded))

    return op


def record(conn: Connection, meter_id: str, answers: Iterable[tuple[str, str, str | None]]) -> None:
    """Upsert what providers said: (provider, status, municipality). An unconfirmed answer never
    overwrites a known one."""
    at = now_us()
    known = {
        r.provider: r.status
        for r in conn.execute(
            select(meter_contracts.c.provider, meter_contracts.c.status).where(meter_contracts.c.meter_id == meter_id)
        )
    }
    new = []
    for provider, status, municipality in answers:
        if provider not in known:
            new.append(
                {
                    "meter_id": meter_id,
                    "provider": provider,
                    "status": status,
                    "municipality": municipality,
                    "learned_us": at,
                }
            )
            known[provider] = status
        elif status != UNCONFIRMED or known[provider] == UNCONFIRMED:
            values: dict[str, Any] = {"status": status, "learned_us": at}
            if municipality:
                values["municipality"] = municipality
            conn.execute(
                update(meter_contracts)
                .where(meter_contracts.c.meter_id == meter_id, meter_contracts.c.provider == provider)
                .values(values)
            )
    if new:
        conn.execute(insert(meter_contracts), new)


def set_preferences(
    municipality: str, ranked: list[str], excluded: list[str], actor: str
) -> Callable[[Connection], None]:
    """Replace a municipality's preferences, and write who did it to the audit log."""

    def op(conn: Connection) -> None:
        at = now_us()
        conn.execute(delete(routing_preferences).where(routing_preferences.c.municipality == municipality))
        rows = [
            {"municipality": municipality, "provider": p, "rank": n, "excluded": False, "updated_us": at}
            for n, p in enumerate(ranked, start=1)
        ]
        rows += [
            {"municipality": municipality, "provider": p, "rank": None, "excluded": True, "updated_us": at}
            for p in excluded
        ]
        if rows:
            conn.execute(insert(routing_preferences), rows)
        detail = f"{municipality}: prefer {ranked or '-'}, exclude {excluded or '-'}"
        conn.execute(insert(routing_audit).values(actor=actor, action="set_preferences", detail=detail, at_us=at))

    return op


def table(meter_id: str | None = None, limit: int = 200) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(meter_contracts).order_by(meter_contracts.c.meter_id, meter_contracts.c.provider).limit(limit)
        if meter_id:
            query = query.where(meter_contracts.c.meter_id == meter_id)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def preferences() -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(routing_preferences).order_by(routing_preferences.c.municipality, routing_preferences.c.rank)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op


def audit(limit: int = 100) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(routing_audit).order_by(routing_audit.c.id.desc()).limit(limit)
        return [dict(r._mapping) for r in conn.execute(query)]

    return op
