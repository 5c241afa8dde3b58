"""The contract table and preferences in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from xhuma.routing.operator import PreferenceChange
from xhuma.storage.db import conflict_insert, now_us
from xhuma.storage.tables import meter_contracts, routing_audit, routing_preferences, routing_weights

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
        preferences, excluded = _rules(conn, municipality)
        return MeterContracts({r.provider: r.status for r in rows}, municipality, preferences, excluded)

    return op


def rules(municipality: str | None) -> Callable[[Connection], tuple[dict[str, int], frozenset[str]]]:
    """The operator's preferences (provider -> rank) and exclusions for a municipality."""
    return lambda conn: _rules(conn, municipality)


def _rules(conn: Connection, municipality: str | None) -> tuple[dict[str, int], frozenset[str]]:
    preferences: dict[str, int] = {}
    excluded: set[str] = set()
    if municipality:
        for p in conn.execute(select(routing_preferences).where(routing_preferences.c.municipality == municipality)):
            if p.excluded:
                excluded.add(p.provider)
            elif p.rank is not None:
                preferences[p.provider] = p.rank
    return preferences, frozenset(excluded)


def record(conn: Connection, meter_id: str, answers: Iterable[tuple[str, str, str | None]]) -> None:
    """Upsert what providers said: (provider, status, municipality). An unconfirmed answer never
    overwrites a known one. One statement, so two processes (or two database threads) writing
    answers about the same meter at once cannot trip over each other's new rows."""
    at = now_us()
    rows: dict[str, dict[str, Any]] = {}
    for provider, status, municipality in answers:
        if provider in rows and status == UNCONFIRMED:
            continue
        rows[provider] = {
            "meter_id": meter_id,
            "provider": provider,
            "status": status,
            "municipality": municipality,
            "learned_us": at,
        }
    if not rows:
        return
    statement = conflict_insert(conn.dialect.name, meter_contracts)
    statement = statement.on_conflict_do_update(
        index_elements=[meter_contracts.c.meter_id, meter_contracts.c.provider],
        set_={
            "status": statement.excluded.status,
            "learned_us": statement.excluded.learned_us,
            "municipality": func.coalesce(statement.excluded.municipality, meter_contracts.c.municipality),
        },
        where=or_(statement.excluded.status != UNCONFIRMED, meter_contracts.c.status == UNCONFIRMED),
    )
    conn.execute(statement, list(rows.values()))


def set_preferences(changes: Iterable[PreferenceChange], actor: str, action: str) -> Callable[[Connection], None]:
    """Replace each named municipality's preferences, all in one transaction, each change
    written to the audit log with who made it."""

    def op(conn: Connection) -> None:
        at = now_us()
        for change in changes:
            where = routing_preferences.c.municipality == change.municipality
            conn.execute(delete(routing_preferences).where(where))
            rows = [
                {"municipality": change.municipality, "provider": p, "rank": n, "excluded": False, "updated_us": at}
                for n, p in enumerate(change.ranked, start=1)
            ]
            rows += [
                {"municipality": change.municipality, "provider": p, "rank": None, "excluded": True, "updated_us": at}
                for p in change.excluded
            ]
            if rows:
                conn.execute(insert(routing_preferences), rows)
            note(conn, actor, action, change.describe())

    return op


def set_weights(changes: dict[str, float | None], actor: str) -> Callable[[Connection], None]:
    """Set or (None) clear operator weights, in one transaction, audited."""

    def op(conn: Connection) -> None:
        at = now_us()
        for provider, weight in sorted(changes.items()):
            conn.execute(delete(routing_weights).where(routing_weights.c.provider == provider))
            if weight is not None:
                conn.execute(insert(routing_weights).values(provider=provider, weight=weight, updated_us=at))
        detail = ", ".join(f"{p}={'configured' if w is None else f'{w:g}'}" for p, w in sorted(changes.items()))
        note(conn, actor, "set_weights", detail)

    return op


def weights() -> Callable[[Connection], dict[str, float]]:
    def op(conn: Connection) -> dict[str, float]:
        return {r.provider: r.weight for r in conn.execute(select(routing_weights))}

    return op


def note(conn: Connection, actor: str, action: str, detail: str) -> None:
    """One line of the routing audit log."""
    conn.execute(insert(routing_audit).values(actor=actor, action=action, detail=detail, at_us=now_us()))


def stale_meters(older_than_us: int, limit: int) -> Callable[[Connection], list[str]]:
    """Meters no provider has said anything about for `older_than_us`, longest-unheard first."""

    def op(conn: Connection) -> list[str]:
        newest = func.max(meter_contracts.c.learned_us)
        query = (
            select(meter_contracts.c.meter_id)
            .group_by(meter_contracts.c.meter_id)
            .having(newest < now_us() - older_than_us)
            .order_by(newest)
            .limit(limit)
        )
        return [r.meter_id for r in conn.execute(query)]

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
