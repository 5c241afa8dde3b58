"""The OAuth2 token endpoint (RFC 6749) and the public keys that verify its tokens.

`POST /oauth/token`, form-encoded: `grant_type=password` (username, password, client_id,
client_secret), as Electrum offers it, or `grant_type=client_credentials` (client_id and
client_secret in the form or as HTTP Basic). The OAuth client is an API credential too: its
client_id is a credential's username and its secret that credential's password. A token's
scopes are those asked for (`scope`, space-separated; all by default) within the user's role.
Failed attempts count towards the same lockout as Basic logins. Event loop."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.access import basic_credentials
from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.node import Node
from xhuma.security.credentials import ApiClient
from xhuma.security.lockout import Lockout

MAX_FORM_BYTES = 8 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, code: str, description: str) -> Response:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="xhuma-oauth"'
    return json_reply({"error": code, "error_description": description}, status, headers=headers)


def oauth_routes(node: Node, lockout: Lockout) -> list[Route]:
    async def verified(username: str, password: str) -> ApiClient | None:
        if lockout.locked(username, time.monotonic()):
            return None
        client = await node.auth.authenticate(username, password)
        if client is None:
            lockout.failed(username, time.monotonic())
        else:
            lockout.succeeded(username)
        return client

    async def token(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_FORM_BYTES)
        except BodyTooLarge:
            return _error(400, "invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes")
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("ascii"), strict_parsing=bool(body)).items()}
        except (UnicodeDecodeError, ValueError):
            return _error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        grant = form.get("grant_type")
        if grant not in ("password", "client_credentials"):
            return _error(400, "unsupported_grant_type", "grant_type must be password or client_credentials")
        basic = basic_credentials(request)
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        if not client_id or secret is None:
            return _error(401, "invalid_client", "client_id and client_secret are required")
        client = await verified(client_id, secret)
        if client is None:
            return _error(401, "invalid_client", "the client's credentials are not valid (or it is locked)")
        user = client
        if grant == "password":
            username, password = form.get("username"), form.get("password")
            if not username or password is None:
                return _error(400, "invalid_request", "username and password are required")
            found = await verified(username, password)
            if found is None:
                return _error(400, "invalid_grant", "the username or password is not valid (or it is locked)")
            user = found
        asked = frozenset(form["scope"].split()) if form.get("scope") else user.scopes
        if not asked or not asked <= user.scopes:
            return _error(400, "invalid_scope", f"scopes available: {' '.join(sorted(user.scopes)) or 'none'}")
        encoded, issued = await node.tokens.issue(user.username, client.username, asked)
        return json_reply(
            {
                "access_token": encoded,
                "token_type": "bearer",
                "expires_in": (issued.expires_us - issued.issued_us) // 1_000_000,
                "scope": " ".join(sorted(asked)),
            },
            headers=NO_STORE,
        )

    async def jwks(_request: Request) -> Response:
        return json_reply(await node.tokens.jwks(), headers={"Cache-Control": "max-age=60"})

    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
