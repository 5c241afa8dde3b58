"""API client credentials: stored as argon2 hashes, each bound to one client institution.

Verifying an argon2 hash costs milliseconds by design, far more than a whole switched purchase.
So a successful verification is remembered for a short while, keyed by a keyed digest of the
presented secret (never the secret itself); a changed or disabled credential stops working
within `cache_seconds` on every node, since nodes re-read the database after that."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
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


@dataclass(frozen=True)
class ApiClient:
    username: str
    client_id: str
    name: str
    enabled: bool
    role: str


ROLES = ("retail", "admin", "bank")
"""retail: the retail interfaces; admin: the /admin API; bank: a homing bank reporting outcomes."""


def add_client(
    username: str, password: str, client_id: str, name: str, role: str = "retail"
) -> Callable[[Connection], None]:
    """Create the credential, or replace its password and binding if the username exists."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    password_hash = hash_password(password)

    def op(conn: Connection) -> None:
        values = {"password_hash": password_hash, "client_id": client_id, "name": name, "enabled": True, "role": role}
        changed = conn.execute(update(api_clients).where(api_clients.c.username == username).values(values)).rowcount
        if not changed:
            conn.execute(insert(api_clients).values(username=username, created_us=now_us(), **values))

    return op


def list_clients() -> Callable[[Connection], list[ApiClient]]:
    def op(conn: Connection) -> list[ApiClient]:
        rows = conn.execute(select(api_clients).order_by(api_clients.c.username))
        return [ApiClient(r.username, r.client_id, r.name, r.enabled, r.role) for r in rows]

    return op


def _load(username: str) -> Callable[[Connection], Any]:
    def op(conn: Connection) -> Any:
        return conn.execute(select(api_clients).where(api_clients.c.username == username)).first()

    return op


class Authenticator:
    def __init__(self, db: Database, *, cache_seconds: float = 30.0, cache_size: int = 10_000) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, bytes], tuple[str, float]] = {}
        self._pending: dict[tuple[str, bytes], asyncio.Future[str | None]] = {}

    async def authenticate(self, username: str, password: str, role: str = "retail") -> str | None:
        """The client institution id the credential is bound to, or None if it is not valid
        for `role`."""
        digest = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        key = (f"{role}:{username}", digest)
        hit = self._verified.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        # Single flight: when many requests with one credential arrive together (tills
        # reconnecting after a restart), one verification serves them all.
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._verify(key, username, password, role))
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _verify(self, key: tuple[str, bytes], username: str, password: str, role: str) -> str | None:
        row = await self.db.run(_load(username))
        if row is None or not row.enabled or row.role != role:
            return None
        if not await asyncio.to_thread(_verify_password, row.password_hash, password):
            return None
        if len(self._verified) >= self.cache_size:
            self._verified.clear()
        self._verified[key] = (str(row.client_id), time.monotonic() + self.cache_seconds)
        return str(row.client_id)


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
