"""API client credentials: stored as argon2 hashes, each bound to one client institution.

Verifying an argon2 hash costs milliseconds by design, far more than a whole switched purchase.
So a successful verification is remembered for a short while, keyed by a keyed digest of the
presented secret (never the secret itself); a changed or disabled credential stops working
within `cache_seconds` on every node, since nodes re-read the database after that."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from xhuma.storage.db import Database, now_us
from xhuma.storage.tables import api_clients

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ROLES = ("retail", "admin", "bank", "finance", "approver")
"""retail: the retail interfaces; admin: the /admin API; bank: a homing bank reporting outcomes;
finance: a maker of finance proposals (/admin/finance); approver: a finance maker who may also
approve or reject another's proposal (the checker)."""
SCOPES_OF_ROLE: dict[str, frozenset[str]] = {
    "retail": frozenset({"ppu", "suv"}),
    "admin": frozenset({"admin"}),
    "bank": frozenset({"bank"}),
    "finance": frozenset({"finance"}),
    "approver": frozenset({"finance", "approve"}),
}
"""Roles are scopes: what each role's credentials may call (a route declares the scope it needs)."""


@dataclass(frozen=True)
class ApiClient:
    username: str
    client_id: str
    name: str
    enabled: bool
    role: str
    networks: tuple[Network, ...] = ()
    """Source networks the credential may be used from (none: anywhere)."""
    cert_subject: str | None = None
    """The client certificate subject it is bound to under mutual TLS (None: any certificate)."""

    @property
    def scopes(self) -> frozenset[str]:
        return SCOPES_OF_ROLE.get(self.role, frozenset())

    def allows_address(self, host: str | None) -> bool:
        return not self.networks or address_within(host, self.networks)


def address_within(host: str | None, networks: Iterable[Network]) -> bool:
    """Whether a peer address (as the server reports it) lies in one of `networks`."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs as given to `--allow` (10.1.0.0/16, 127.0.0.1/32, ::1/128); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network in CIDR form: {exc}") from None
    return tuple(networks)


def _client(row: Any) -> ApiClient:
    networks = parse_networks(row.networks.split(",")) if row.networks else ()
    return ApiClient(row.username, row.client_id, row.name, row.enabled, row.role, networks, row.cert_subject)


def add_client(
    username: str,
    password: str,
    client_id: str,
    name: str,
    role: str = "retail",
    *,
    networks: tuple[Network, ...] = (),
    cert_subject: str | None = None,
) -> Callable[[Connection], None]:
    """Create the credential, or replace its password and bindings if the username exists."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    password_hash = hash_password(password)

    def op(conn: Connection) -> None:
        values = {
            "password_hash": password_hash,
            "client_id": client_id,
            "name": name,
            "enabled": True,
            "role": role,
            "networks": ",".join(str(n) for n in networks) or None,
            "cert_subject": cert_subject,
        }
        changed = conn.execute(update(api_clients).where(api_clients.c.username == username).values(values)).rowcount
        if not changed:
            conn.execute(insert(api_clients).values(username=username, created_us=now_us(), **values))

    return op


def list_clients() -> Callable[[Connection], list[ApiClient]]:
    def op(conn: Connection) -> list[ApiClient]:
        rows = conn.execute(select(api_clients).order_by(api_clients.c.username))
        return [_client(r) for r in rows]

    return op


def _load(username: str) -> Callable[[Connection], Any]:
    def op(conn: Connection) -> Any:
        return conn.execute(select(api_clients).where(api_clients.c.username == username)).first()

    return op


_UNKNOWN_USER_HASH = hash_password(secrets.token_urlsafe(16))
"""Verified against when the username is unknown, so that an unknown user and a wrong password
take the same time (no finding out which usernames exist by timing)."""


class Authenticator:
    def __init__(self, db: Database, *, cache_seconds: float = 30.0, cache_size: int = 10_000) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, bytes], tuple[ApiClient, float]] = {}
        self._pending: dict[tuple[str, bytes], asyncio.Future[ApiClient | None]] = {}

    async def lookup(self, username: str) -> ApiClient | None:
        """The enabled credential of a username whose identity was proved otherwise (a signed
        token): no password to check, so always read fresh, never from the cache."""
        row = await self.db.run(_load(username))
        return _client(row) if row is not None and row.enabled else None

    async def authenticate(self, username: str, password: str) -> ApiClient | None:
        """The enabled credential with this username and password, or None."""
        digest = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        key = (username, digest)
        hit = self._verified.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        # Single flight: when many requests with one credential arrive together (tills
        # reconnecting after a restart), one verification serves them all.
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._verify(key, username, password))
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _verify(self, key: tuple[str, bytes], username: str, password: str) -> ApiClient | None:
        row = await self.db.run(_load(username))
        password_hash = row.password_hash if row is not None else _UNKNOWN_USER_HASH
        verified = await asyncio.to_thread(_verify_password, password_hash, password)
        if row is None or not verified or not row.enabled:
            return None
        if len(self._verified) >= self.cache_size:
            self._verified.clear()
        client = _client(row)
        self._verified[key] = (client, time.monotonic() + self.cache_seconds)
        return client


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
