"""One authentication layer for every route (event loop; reads the database only through the
credential cache's `Database.run`).

A Starlette authentication backend reads the request's credentials once, before any route
code and before the body is read: HTTP Basic, or an OAuth2 bearer token (`security/oauth.py`). It
checks the username's lockout, the password, the credential's source networks, and under mutual
TLS the client certificate's subject a credential is bound to (`xhuma.tls` on the subject's
form). Every route then
declares the scope it needs (roles are scopes: retail -> ppu, suv; admin; bank) through
`protect`, and each API answers a refusal in its own error shape: 401 without valid credentials,
403 for a credential without the route's scope or from outside its networks, 429 while the
username is locked."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from xhuma.api.replies import json_reply
from xhuma.httpserver import close_connection
from xhuma.security.credentials import ApiClient, Authenticator, Network, address_within
from xhuma.security.lockout import Lockout
from xhuma.security.oauth import TokenService
from xhuma.tls import peer_subject, same_subject

OPEN = None
"""The scope of a route anyone may call (/health, /openapi.json)."""
REFUSAL_KEY = "xhuma.refusal"


@dataclass(frozen=True)
class Principal(BaseUser):
    """Who is calling: the verified credential."""

    client: ApiClient

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.client.username

    @property
    def identity(self) -> str:
        return self.client.username


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused before its route runs (kept on the request for the journal)."""

    status: int
    reason: str
    username: str | None = None
    close: bool = False
    """Close the connection instead of answering (an address outside a credential's networks,
    with `close_on_unlisted_address`); the refusal is still journalled."""


Deny = Callable[[Request, Refusal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def basic_credentials(connection: HTTPConnection) -> tuple[str, str] | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def bearer_token(connection: HTTPConnection) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


class CredentialsBackend(AuthenticationBackend):
    def __init__(
        self, authenticator: Authenticator, lockout: Lockout, tokens: TokenService, close_unlisted: bool = False
    ) -> None:
        self.authenticator = authenticator
        self.lockout = lockout
        self.tokens = tokens
        self.close_unlisted = close_unlisted

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = bearer_token(conn)
        if token is not None:
            return await self._bearer(conn, token)
        given = basic_credentials(conn)
        if given is None:
            conn.scope[REFUSAL_KEY] = Refusal(401, "no credentials")
            return None
        username, password = given
        if self.lockout.locked(username, time.monotonic()):
            conn.scope[REFUSAL_KEY] = Refusal(429, f"{username} is locked after failed logins", username)
            return None
        client = await self.authenticator.authenticate(username, password)
        if client is None:
            locked = self.lockout.failed(username, time.monotonic())
            reason = f"bad credentials for {username}" + ("; now locked" if locked else "")
            conn.scope[REFUSAL_KEY] = Refusal(401, reason, username)
            return None
        self.lockout.succeeded(username)
        return self._admitted(conn, client, client.scopes)

    async def _bearer(self, conn: HTTPConnection, encoded: str) -> tuple[AuthCredentials, BaseUser] | None:
        """An OAuth2 access token: its scopes are those it was issued with (never more than
        its user's role), and its user must still be enabled and calling from its networks."""
        token = await self.tokens.verify(encoded)
        client = await self.authenticator.lookup(token.sub) if token is not None else None
        if token is None or client is None:
            conn.scope[REFUSAL_KEY] = Refusal(401, "the bearer token is not valid, has expired or was revoked")
            return None
        return self._admitted(conn, client, token.scopes & client.scopes)

    def _admitted(
        self, conn: HTTPConnection, client: ApiClient, scopes: frozenset[str]
    ) -> tuple[AuthCredentials, BaseUser] | None:
        host = conn.client.host if conn.client else None
        if not client.allows_address(host):
            reason = f"{client.username} may not be used from {host}"
            conn.scope[REFUSAL_KEY] = Refusal(403, reason, client.username, close=self.close_unlisted)
            return None
        if client.cert_subject is not None and not same_subject(client.cert_subject, peer_subject(conn.scope)):
            presented = peer_subject(conn.scope) or "no client certificate"
            conn.scope[REFUSAL_KEY] = Refusal(
                403, f"{client.username} is bound to another certificate than {presented}", client.username
            )
            return None
        return AuthCredentials(sorted(scopes)), Principal(client)


def protect(scope: str, deny: Deny, endpoint: Endpoint) -> Endpoint:
    """The route runs only for a credential with `scope`; anything else is answered by `deny`."""

    async def guarded(request: Request) -> Response:
        if isinstance(request.user, Principal):
            if scope in request.auth.scopes:
                return await endpoint(request)
            refusal = Refusal(403, f"{request.user.display_name} lacks the {scope} scope", request.user.display_name)
        else:
            refusal = request.scope.get(REFUSAL_KEY) or Refusal(401, "no credentials")
        answer = await deny(request, refusal)
        if refusal.close:
            close_connection(request.scope)  # the answer then goes nowhere
        return answer

    return guarded


class OperatorNetworks:
    """ASGI middleware: the operator API (/admin, and the monitoring routes) answers only
    addresses in `networks`, checked before credentials or a body are read; others get 403, or
    a closed connection."""

    def __init__(self, app: Any, networks: Sequence[Network], close: bool = False) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.close = close

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.networks and scope["type"] == "http" and _is_operator_path(scope["path"]):
            host = scope["client"][0] if scope.get("client") else None
            if not address_within(host, self.networks):
                if self.close and close_connection(scope):
                    return
                refused = json_reply({"error": f"the operator API is not open to {host}", "field": "address"}, 403)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


OPERATOR_PATHS = frozenset({"/admin", "/health/services", "/metrics"})
"""Operator-only routes outside /admin (monitoring), fenced with it."""


def _is_operator_path(path: str) -> bool:
    return path in OPERATOR_PATHS or path.startswith("/admin/")


def principal(request: Request) -> ApiClient:
    """The verified credential of a request that passed `protect`."""
    user = request.user
    assert isinstance(user, Principal)
    return user.client


def refusal_headers(refusal: Refusal) -> dict[str, str]:
    """What a client needs to act on a refusal: the auth scheme to use, or when to try again."""
    if refusal.status == 401:
        return {"WWW-Authenticate": 'Basic realm="xhuma"'}
    if refusal.status == 429:
        return {"Retry-After": "60"}
    return {}
