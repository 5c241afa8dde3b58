"""Every change an operator can make, as both the CLI and the admin API run it: the change, with
the state it touches read before and after, recorded in the audit log in the same transaction
(`audit.audited`). Each function returns an operation for `Database.run`; it runs on a database
thread and, like every such operation, may run twice after a rollback (the entry with it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from xhuma.eft.intake import IntakeResult
from xhuma.routing import contracts
from xhuma.routing.operator import PreferenceChange
from xhuma.saf import queue
from xhuma.security import credentials, oauth
from xhuma.security.audit import Actor, audited, record
from xhuma.storage.tables import api_clients, reconciliation_exceptions
from xhuma.vouchers import catalogue_store, store
from xhuma.vouchers.catalogue import Product

T = TypeVar("T")
Op = Callable[[Connection], T]


def _one(query: Any) -> Op[dict[str, Any] | None]:
    def read(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    return read


def add_client(
    actor: Actor,
    username: str,
    password: str,
    client_id: str,
    name: str,
    role: str,
    *,
    networks: tuple[credentials.Network, ...] = (),
    cert_subject: str | None = None,
) -> Op[None]:
    """The credential's binding before and after (never its password or hash)."""
    c = api_clients.c
    state = _one(
        select(c.client_id, c.name, c.role, c.enabled, c.networks, c.cert_subject).where(c.username == username)
    )
    change = credentials.add_client(
        username, password, client_id, name, role, networks=networks, cert_subject=cert_subject
    )
    return audited(change, actor, "clients.add", username, state)


def _saf_state(entry_id: int) -> Op[dict[str, Any] | None]:
    def read(conn: Connection) -> dict[str, Any] | None:
        entry = queue.get_entry(entry_id)(conn)
        return None if entry is None else {k: entry.get(k) for k in ("state", "attempts", "resolution")}

    return read


def retry_saf(actor: Actor, entry_id: int) -> Op[bool]:
    return audited(queue.retry_entry(entry_id), actor, "saf.retry", f"saf entry {entry_id}", _saf_state(entry_id))


def resolve_saf(actor: Actor, entry_id: int, note: str) -> Op[bool]:
    change = queue.resolve_entry(entry_id, note)
    return audited(change, actor, "saf.resolve", f"saf entry {entry_id}", _saf_state(entry_id))


def set_preferences(actor: Actor, changes: list[PreferenceChange], action: str) -> Op[None]:
    named = {c.municipality for c in changes}

    def state(conn: Connection) -> list[dict[str, Any]]:
        return [
            {k: r[k] for k in ("municipality", "provider", "rank", "excluded")}
            for r in contracts.preferences()(conn)
            if r["municipality"] in named
        ]

    change = contracts.set_preferences(changes, actor.name, action)
    return audited(change, actor, f"routing.{action}", ", ".join(sorted(named)), state)


def set_weights(actor: Actor, changes: dict[str, float | None]) -> Op[None]:
    change = contracts.set_weights(changes, actor.name)
    return audited(change, actor, "routing.set_weights", ", ".join(sorted(changes)), contracts.weights())


def note_rebroadcast(actor: Actor, meter_id: str) -> Op[None]:
    def change(conn: Connection) -> None:
        contracts.note(conn, actor.name, "rebroadcast", meter_id)
        record(conn, actor, "routing.rebroadcast", meter_id)

    return change


def _catalogue_state(client_id: str, codes: Iterable[str] | None = None) -> Op[dict[str, Product]]:
    wanted = None if codes is None else set(codes)

    def read(conn: Connection) -> dict[str, Product]:
        products: list[Product] = catalogue_store.products(client_id)(conn)
        return {p.code: p for p in products if wanted is None or p.code in wanted}

    return read


def import_products(actor: Actor, client_id: str, products: list[Product], *, replace: bool) -> Op[dict[str, int]]:
    """The products the import may touch, before and after: those it names, or with `replace`
    the client's whole catalogue."""
    state = _catalogue_state(client_id, None if replace else (p.code for p in products))
    change = catalogue_store.import_products(client_id, products, actor.name, replace=replace)
    return audited(change, actor, "catalogue.import", client_id, state)


def remove_product(actor: Actor, client_id: str, product_code: str) -> Op[bool]:
    change = catalogue_store.remove_product(client_id, product_code, actor.name)
    return audited(
        change, actor, "catalogue.remove", f"{client_id} {product_code}", _catalogue_state(client_id, [product_code])
    )


def settle_exposure(actor: Actor, exposure_id: int, note: str) -> Op[bool]:
    state = _one(
        select(reconciliation_exceptions.c.state, reconciliation_exceptions.c.resolution).where(
            reconciliation_exceptions.c.id == exposure_id
        )
    )
    return audited(store.settle_exposure(exposure_id, note), actor, "vouchers.settle", f"exposure {exposure_id}", state)


def eft_file_taken(actor: Actor, name: str, result: IntakeResult) -> Op[None]:
    """An EFT file offered to intake, after intake has judged it (intake commits on its own; the
    entry follows in the next transaction)."""
    outcome: dict[str, Any] = {"file": result.file_id, "state": result.state, "reason": result.reason}
    if result.finding is not None:
        outcome["exception"] = result.finding.reason
    if result.summary is not None:
        outcome.update(
            transactions=result.summary.transactions,
            transmission=result.summary.transmission_key,
            sha256=result.summary.content_hash,
        )

    def change(conn: Connection) -> None:
        record(conn, actor, "eft.ingest", name, None, outcome)

    return change


def revoke_token(actor: Actor, jti: str, lifetime_seconds: float) -> Op[None]:
    return audited(oauth.revoke(jti, lifetime_seconds), actor, "tokens.revoke", jti)


def revoke_tokens_of(actor: Actor, username: str, lifetime_seconds: float) -> Op[None]:
    return audited(oauth.revoke_all(username, lifetime_seconds), actor, "tokens.revoke_all", username)


def rotate_signing_key(actor: Actor) -> Op[str]:
    """A new token signing key; the one signing until now verifies until its tokens expire."""
    kid, pem, jwk = oauth.new_key()
    return audited(oauth.add_key(kid, pem, jwk, retire_others=True), actor, "tokens.rotate_key", kid)
