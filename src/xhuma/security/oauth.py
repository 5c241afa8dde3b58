"""OAuth2 access tokens: ES256 JWTs signed with keys kept in the journal database, so every node
issues and verifies the same tokens. PyJWT does the JOSE work; nothing here is hand-made crypto.

The newest unretired key signs. `rotate` retires it: a retired key still verifies until every
token it signed has expired (retired + token lifetime), and /.well-known/jwks.json publishes
the public half of every key that still verifies. A token is refused once revoked by its jti,
or when its username's tokens were all revoked after it was issued. Database operations here
are idempotent by the key id or jti they are given; `TokenService` runs on the event loop."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Connection, or_, select, update

from xhuma.storage.db import Database, conflict_insert, now_us
from xhuma.storage.tables import oauth_keys, oauth_revocations

ALGORITHM = "ES256"
ISSUER = "xhuma"
KEYS_TTL_SECONDS = 30.0
"""How often a node re-reads the keys (a key made or retired on another node is seen within it)."""

Op = Callable[[Connection], Any]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]
    retired_us: int | None


@dataclass(frozen=True)
class AccessToken:
    sub: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    issued_us: int
    expires_us: int


def new_key() -> tuple[str, str, str]:
    """A fresh P-256 key: its id, private PEM and public JWK (JSON)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = secrets.token_hex(8)
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": kid, "use": "sig", "alg": ALGORITHM}
    return kid, pem, json.dumps(jwk)


def add_key(kid: str, pem: str, jwk: str, *, retire_others: bool) -> Op:
    """Store a key (once, by its kid); with `retire_others`, the keys signing until now retire."""

    def op(conn: Connection) -> str:
        at = now_us()
        inserted = conn.execute(
            conflict_insert(conn.dialect.name, oauth_keys)
            .values(kid=kid, private_pem=pem, public_jwk=jwk, created_us=at, retired_us=None)
            .on_conflict_do_nothing()
        ).rowcount
        if inserted and retire_others:
            conn.execute(
                update(oauth_keys)
                .where(oauth_keys.c.kid != kid, oauth_keys.c.retired_us.is_(None))
                .values(retired_us=at)
            )
        return kid

    return op


def usable_keys(lifetime_seconds: float) -> Op:
    """Keys that still verify: unretired, or retired less than a token lifetime ago."""

    def op(conn: Connection) -> list[SigningKey]:
        oldest = now_us() - int(lifetime_seconds * 1_000_000)
        rows = conn.execute(
            select(oauth_keys)
            .where(or_(oauth_keys.c.retired_us.is_(None), oauth_keys.c.retired_us > oldest))
            .order_by(oauth_keys.c.created_us.desc())
        )
        return [SigningKey(r.kid, r.private_pem, json.loads(r.public_jwk), r.retired_us) for r in rows]

    return op


def revoke(jti: str, lifetime_seconds: float) -> Op:
    """One token, by its jti (kept for a token lifetime: by then it has expired anyway)."""

    def op(conn: Connection) -> None:
        at = now_us()
        expires = at + int(lifetime_seconds * 1_000_000)
        row = {"jti": jti, "username": "", "before_us": None, "expires_us": expires, "at_us": at}
        conn.execute(conflict_insert(conn.dialect.name, oauth_revocations).values(row).on_conflict_do_nothing())

    return op


def revoke_all(username: str, lifetime_seconds: float) -> Op:
    """Every token of `username` issued until now (its later tokens are not affected)."""

    def op(conn: Connection) -> None:
        at = now_us()
        jti = f"*{username}"
        row = {
            "jti": jti,
            "username": username,
            "before_us": at,
            "expires_us": at + int(lifetime_seconds * 1_000_000),
            "at_us": at,
        }
        statement = conflict_insert(conn.dialect.name, oauth_revocations).values(row)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[oauth_revocations.c.jti],
                set_={"before_us": at, "expires_us": row["expires_us"], "at_us": at},
            )
        )

    return op


def is_revoked(token: AccessToken) -> Op:
    def op(conn: Connection) -> bool:
        rows = conn.execute(
            select(oauth_revocations.c.jti, oauth_revocations.c.before_us).where(
                oauth_revocations.c.jti.in_([token.jti, f"*{token.sub}"])
            )
        ).all()
        return any(r.jti == token.jti or (r.before_us is not None and token.issued_us <= r.before_us) for r in rows)

    return op


class TokenService:
    def __init__(self, db: Database, *, lifetime_seconds: float = 3600.0) -> None:
        self.db = db
        self.lifetime_seconds = lifetime_seconds
        self._keys: tuple[float, list[SigningKey]] = (-1.0, [])

    async def keys(self, *, fresh: bool = False) -> list[SigningKey]:
        read_at, keys = self._keys
        if fresh or time.monotonic() - read_at >= KEYS_TTL_SECONDS or not keys:
            keys = await self.db.run(usable_keys(self.lifetime_seconds))
            if not keys:
                await self.db.run(add_key(*new_key(), retire_others=False))
                keys = await self.db.run(usable_keys(self.lifetime_seconds))
            self._keys = (time.monotonic(), keys)
        return keys

    async def issue(self, sub: str, client_id: str, scopes: frozenset[str]) -> tuple[str, AccessToken]:
        signing = next((k for k in await self.keys() if k.retired_us is None), None)
        if signing is None:
            signing = next(k for k in await self.keys(fresh=True) if k.retired_us is None)
        issued = now_us()
        token = AccessToken(
            sub, client_id, scopes, str(uuid.uuid4()), issued, issued + int(self.lifetime_seconds * 1_000_000)
        )
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
            "jti": token.jti,
            "iat": issued // 1_000_000,
            "iat_us": issued,
            "exp": -(-token.expires_us // 1_000_000),  # rounded up: never shorter than the lifetime
        }
        encoded = jwt.encode(claims, signing.private_pem, algorithm=ALGORITHM, headers={"kid": signing.kid})
        return encoded, token

    async def verify(self, encoded: str) -> AccessToken | None:
        """The token's claims when its signature, issuer and expiry hold and it is not revoked."""
        try:
            kid = jwt.get_unverified_header(encoded).get("kid")
        except jwt.PyJWTError:
            return None
        key = next((k for k in await self.keys() if k.kid == kid), None)
        if key is None:  # made on another node since we last looked, perhaps
            key = next((k for k in await self.keys(fresh=True) if k.kid == kid), None)
        if key is None:
            return None
        try:
            public = jwt.PyJWK(key.public_jwk)
            claims = jwt.decode(
                encoded, public, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "jti", "sub"]}
            )
        except jwt.PyJWTError:
            return None
        token = AccessToken(
            str(claims["sub"]),
            str(claims.get("client_id", "")),
            frozenset(str(claims.get("scope", "")).split()),
            str(claims["jti"]),
            int(claims.get("iat_us", 0)),
            int(claims["exp"]) * 1_000_000,
        )
        if await self.db.run(is_revoked(token)):
            return None
        return token

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in await self.keys(fresh=True)]}
