"""Database operations for the catalogue: import (one transaction, a change-log entry for each
product that actually changed), look-ups, routing a client's product to its providers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from xhuma.storage.db import now_us
from xhuma.storage.tables import catalogue_changes, catalogue_mappings, catalogue_products
from xhuma.vouchers.catalogue import Product, ProviderMapping

Op = Callable[[Connection], Any]


def import_products(client_id: str, products: list[Product], actor: str, *, replace: bool = False) -> Op:
    """Add or change the given products; with `replace`, remove the client's others. Returns
    {"added": n, "changed": n, "removed": n, "version": v}."""

    def op(conn: Connection) -> dict[str, int]:
        current = {p.code: p for p in _load(conn, client_id)}
        counts = {"added": 0, "changed": 0, "removed": 0}
        for product in products:
            before = current.get(product.code)
            if before == product:
                continue
            if before is not None:
                _delete(conn, client_id, product.code)
            _insert(conn, client_id, product)
            action = "changed" if before is not None else "added"
            counts[action] += 1
            _log(conn, client_id, product.code, action, actor)
        if replace:
            keep = {p.code for p in products}
            for code in sorted(set(current) - keep):
                _delete(conn, client_id, code)
                counts["removed"] += 1
                _log(conn, client_id, code, "removed", actor)
        return {**counts, "version": _version(conn, client_id)}

    return op


def remove_product(client_id: str, product_code: str, actor: str) -> Op:
    def op(conn: Connection) -> bool:
        if not _delete(conn, client_id, product_code):
            return False
        _log(conn, client_id, product_code, "removed", actor)
        return True

    return op


def products(client_id: str, at: date | None = None) -> Op:
    """The client's products; with `at`, only those valid on that day."""

    def op(conn: Connection) -> list[Product]:
        found = _load(conn, client_id)
        return [p for p in found if at is None or p.valid_on(at)]

    return op


def catalogue_version(client_id: str) -> Op:
    def op(conn: Connection) -> int:
        return _version(conn, client_id)

    return op


def changes_since(client_id: str, version: int) -> Op:
    def op(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(catalogue_changes)
            .where(catalogue_changes.c.client_id == client_id, catalogue_changes.c.version > version)
            .order_by(catalogue_changes.c.version)
        )
        return [
            {"version": r.version, "productCode": r.product_code, "action": r.action, "actor": r.actor, "atUs": r.at_us}
            for r in rows
        ]

    return op


def route(client_id: str, product_code: str, at: date | None = None) -> Op:
    """The product and its (provider, provider product code) pairs by rank, or None when the
    client may not sell it (unknown, or not valid on `at`, default today)."""

    def op(conn: Connection) -> tuple[Product, list[tuple[str, str]]] | None:
        found = _load(conn, client_id, product_code)
        if not found or not found[0].valid_on(at or date.today()):
            return None
        product = found[0]
        return product, [(m.provider, m.provider_product_code) for m in product.mappings]

    return op


def _load(conn: Connection, client_id: str, product_code: str | None = None) -> list[Product]:
    query = select(catalogue_products).where(catalogue_products.c.client_id == client_id)
    maps = select(catalogue_mappings).where(catalogue_mappings.c.client_id == client_id)
    if product_code is not None:
        query = query.where(catalogue_products.c.product_code == product_code)
        maps = maps.where(catalogue_mappings.c.product_code == product_code)
    mappings: dict[str, list[ProviderMapping]] = {}
    for m in conn.execute(maps.order_by(catalogue_mappings.c.rank, catalogue_mappings.c.provider)):
        mappings.setdefault(m.product_code, []).append(ProviderMapping(m.provider, m.provider_product_code, m.rank))
    return [
        Product(
            r.product_code,
            r.name,
            r.product_type,
            r.fixed_value,
            r.currency,
            r.description,
            r.amount,
            r.min_amount,
            r.max_amount,
            date.fromisoformat(r.valid_from) if r.valid_from else None,
            date.fromisoformat(r.valid_to) if r.valid_to else None,
            tuple(mappings.get(r.product_code, ())),
        )
        for r in conn.execute(query.order_by(catalogue_products.c.product_code))
    ]


def _insert(conn: Connection, client_id: str, product: Product) -> None:
    conn.execute(
        insert(catalogue_products).values(
            client_id=client_id,
            product_code=product.code,
            name=product.name,
            product_type=product.product_type,
            description=product.description,
            fixed_value=product.fixed_value,
            amount=product.amount,
            min_amount=product.min_amount,
            max_amount=product.max_amount,
            currency=product.currency,
            valid_from=product.valid_from.isoformat() if product.valid_from else None,
            valid_to=product.valid_to.isoformat() if product.valid_to else None,
            updated_us=now_us(),
        )
    )
    conn.execute(
        insert(catalogue_mappings),
        [
            {
                "client_id": client_id,
                "product_code": product.code,
                "provider": m.provider,
                "provider_product_code": m.provider_product_code,
                "rank": m.rank,
            }
            for m in product.mappings
        ],
    )


def _delete(conn: Connection, client_id: str, product_code: str) -> bool:
    conn.execute(
        delete(catalogue_mappings).where(
            catalogue_mappings.c.client_id == client_id, catalogue_mappings.c.product_code == product_code
        )
    )
    done = conn.execute(
        delete(catalogue_products).where(
            catalogue_products.c.client_id == client_id, catalogue_products.c.product_code == product_code
        )
    )
    return bool(done.rowcount)


def _log(conn: Connection, client_id: str, product_code: str, action: str, actor: str) -> None:
    conn.execute(
        insert(catalogue_changes).values(
            client_id=client_id, product_code=product_code, action=action, actor=actor, at_us=now_us()
        )
    )


def _version(conn: Connection, client_id: str) -> int:
    found = conn.execute(
        select(func.max(catalogue_changes.c.version)).where(catalogue_changes.c.client_id == client_id)
    ).scalar()
    return int(found or 0)
