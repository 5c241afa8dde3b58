"""A simulated provider's front door, with its own code and nothing of the switch's: HTTPS with
its certificate (and, asked for, a client certificate from a given CA), OAuth2 bearer tokens
from its own tiny token endpoint, and `x-jwt-signature` checked over every body.

`POST /_sim/oauth/token` (client_credentials or password grant; the client by HTTP Basic or in
the form) issues opaque tokens that expire after `token_seconds`; `POST /_sim/oauth/revoke`
makes every token issued so far refused (401), as a provider that rotated its keys would;
`GET /_sim/security` counts token requests, refusals and verified signatures. Only the
interface's routes (under `protected`) are guarded; /health and /_sim stay open."""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization

SIGNATURE_HEADER = b"x-jwt-signature"
DIGEST_CLAIM = "electrum.co.za/content-digest"
"""Electrum's claim: the SHA-256 of the message body's bytes, base64."""
TOKEN_PATH = "/_sim/oauth/token"


@dataclass
class GuardConfig:
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    """Require a client certificate issued by this CA (mutual TLS)."""
    oauth_client: tuple[str, str] | None = None
    """Require bearer tokens, issued to this client id and secret."""
    token_seconds: float = 3600.0
    verify_key: Path | None = None
    """Require `x-jwt-signature`, verified with this PEM public key."""


@dataclass
class GuardCounts:
    token_requests: int = 0
    tokens_issued: int = 0
    bearer_refused: int = 0
    signatures_verified: int = 0
    signatures_refused: int = 0
    refusal_reasons: list[str] = field(default_factory=list)


def server_context(config: GuardConfig) -> ssl.SSLContext | None:
    """The simulator's own TLS context (TLS 1.2 at least), None when it serves plain HTTP."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.client_ca is not None:
        context.load_verify_locations(cafile=config.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
        # Under TLS 1.3 a refused client certificate is told by an alert after the client has
        # finished its handshake, and asyncio's server closes without sending it (a real TLS
        # server sends it); under TLS 1.2 the refusal is part of the handshake, as clients see
        # it from any server.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


class Guard:
    """ASGI middleware in front of a simulator's app."""

    def __init__(self, app: Any, config: GuardConfig, protected: str) -> None:
        self.app = app
        self.config = config
        self.protected = protected
        self.counts = GuardCounts()
        self._tokens: dict[str, float] = {}
        self._public_key = (
            serialization.load_pem_public_key(config.verify_key.read_bytes()) if config.verify_key else None
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == TOKEN_PATH:
            await self._answer(send, *self._token_endpoint(scope, await _body(receive)))
            return
        if path == "/_sim/oauth/revoke":
            self._tokens.clear()
            await self._answer(send, 200, {"revoked": True})
            return
        if path == "/_sim/security":
            counts = self.counts
            await self._answer(send, 200, {k: getattr(counts, k) for k in counts.__dataclass_fields__})
            return
        if not path.startswith(self.protected) or (self.config.oauth_client is None and self._public_key is None):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        headers = dict(scope["headers"])
        refusal = self._bearer_refusal(headers) or self._signature_refusal(headers, body)
        if refusal is not None:
            self.counts.refusal_reasons.append(refusal)
            await self._answer(send, 401, {"message": refusal})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return dict(await receive())
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _bearer_refusal(self, headers: dict[bytes, bytes]) -> str | None:
        if self.config.oauth_client is None:
            return None
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = given.partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires <= time.monotonic():
            self.counts.bearer_refused += 1
            return "a valid bearer token is required"
        return None

    def _signature_refusal(self, headers: dict[bytes, bytes], body: bytes) -> str | None:
        if self._public_key is None:
            return None
        token = headers.get(SIGNATURE_HEADER)
        problem = None
        if token is None:
            problem = "no x-jwt-signature"
        else:
            try:
                claims = jwt.decode(token.decode("latin-1"), self._public_key, algorithms=["ES256"])  # type: ignore[arg-type]
            except jwt.PyJWTError as exc:
                problem = f"x-jwt-signature does not verify: {exc}"
            else:
                expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
                if claims.get(DIGEST_CLAIM) != expected:
                    problem = "x-jwt-signature: the digest is not the body's"
        if problem is not None:
            self.counts.signatures_refused += 1
            return problem
        self.counts.signatures_verified += 1
        return None

    def _token_endpoint(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        self.counts.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode("latin-1")).items()}
        headers = dict(scope["headers"])
        basic = headers.get(b"authorization", b"").decode("latin-1")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if self.config.oauth_client is None or (client_id, secret) != self.config.oauth_client:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") not in ("client_credentials", "password"):
            return 400, {"error": "unsupported_grant_type"}
        token = secrets.token_hex(16)
        self._tokens[token] = time.monotonic() + self.config.token_seconds
        self.counts.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.config.token_seconds}

    @staticmethod
    async def _answer(send: Any, status: int, body: Any) -> None:
        encoded = msgspec.json.encode(body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": encoded})


def sign_body(key_file: Path, body: bytes) -> str:
    """An `x-jwt-signature` over `body` with the PEM private key in `key_file` (the bank's)."""
    now = int(time.time())
    claims = {
        DIGEST_CLAIM: base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, key_file.read_bytes(), algorithm="ES256")


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
