"""OAuth2 access tokens towards one provider (or the bank), as its client (RFC 6749 §4.3 and
§4.4): fetched on first use, kept, and fetched again once half their lifetime (`expires_in`/2)
has gone, so a token is never used near its end. Event loop only.

Single flight: requests that find the token due wait on one fetch instead of each making their
own. A refresh that fails while the old token is still within its lifetime keeps the old one
(and tries again a second later); a fetch that fails with no usable token is a TokenError, and
the request it was for is never sent. `invalidate` drops a token the provider refused (401), so
the next request fetches a new one; it drops only that token, so many requests refused at once
cause one fetch, not many."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
import msgspec

DEFAULT_EXPIRES_SECONDS = 60.0
"""Taken as the lifetime of a token answered without `expires_in` (RFC 6749 leaves it optional)."""
RETRY_REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class OAuthClientSettings:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    username: str | None = None
    """With a username (and password), the password grant, as Electrum offers; else client_credentials."""
    password: str | None = field(default=None, repr=False)
    client_auth: str = "basic"
    """How the client id and secret go: "basic" (HTTP Basic, RFC 6749 §2.3.1) or "form" (in the body)."""

    @property
    def grant_type(self) -> str:
        return "password" if self.username else "client_credentials"


class TokenError(Exception):
    """No access token could be had; the message says what the token endpoint did."""


class _Answer(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"
    expires_in: float | None = None


class TokenCache:
    def __init__(self, settings: OAuthClientSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self, session: aiohttp.ClientSession) -> str:
        """A token to send now: the one held, or a new one when it is due."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token  # fetched by the request we waited behind
            try:
                self._token, lifetime = await self._fetch(session)
            except TokenError:
                if self._token is None or self._clock() >= self._expires_at:
                    self._token = None
                    raise
                self._refresh_at = self._clock() + RETRY_REFRESH_SECONDS
                return self._token
            now = self._clock()
            self._refresh_at, self._expires_at = now + lifetime / 2, now + lifetime
            return self._token

    def invalidate(self, token: str) -> None:
        """The provider refused `token`: fetch another on the next request (if none was yet)."""
        if self._token == token:
            self._token = None

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        s = self.settings
        form: dict[str, str] = {"grant_type": s.grant_type}
        if s.scope:
            form["scope"] = s.scope
        if s.username:
            form.update(username=s.username, password=s.password or "")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if s.client_auth == "form":
            form.update(client_id=s.client_id, client_secret=s.client_secret)
        else:
            headers["Authorization"] = aiohttp.BasicAuth(s.client_id, s.client_secret).encode()
        try:
            async with session.post(s.token_url, data=urlencode(form), headers=headers) as got:
                body = await got.read()
                status = got.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TokenError(f"token endpoint {s.token_url}: {type(exc).__name__}: {exc}") from None
        if status != 200:
            raise TokenError(f"token endpoint {s.token_url} answered {status}: {body[:200].decode('utf-8', 'replace')}")
        try:
            answer = msgspec.json.decode(body, type=_Answer)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise TokenError(f"token endpoint {s.token_url}: not a token answer ({exc})") from None
        if answer.token_type.lower() != "bearer" or not answer.access_token:
            raise TokenError(f"token endpoint {s.token_url}: a {answer.token_type!r} token, not a bearer token")
        lifetime = answer.expires_in if answer.expires_in and answer.expires_in > 0 else DEFAULT_EXPIRES_SECONDS
        return answer.access_token, float(lifetime)
