"""The HTTP client every JSON provider adapter shares: one pooled aiohttp session per provider,
Basic auth, a connect timeout within one total deadline per request, and the interfaces' outcome classes. An adapter
module per protocol adds only `prepare`, the mapping of our message to its wire.

Outbound security, per provider (and for the bank, which is sent to through this client too):
HTTPS verified against a configured CA bundle, a client certificate for mutual TLS, OAuth2
bearer tokens instead of Basic (`oauth_client.TokenCache`), and an `x-jwt-signature` over each
body (`security.message_signing`). A TLS handshake that fails, and a token that cannot be had,
both mean the request never left: failed and not delivered, like a refused connection.

A 401 with a bearer token is answered by fetching a new token and sending the same bytes once
more. That cannot buy twice: a 401 is the provider's authentication refusing the request
before the request is acted on (an interface's own refusals are 400s and 404s with an error
body), so the first attempt did nothing; and the second carries the same upstream id, which a
provider that did act would answer as a duplicate. A second 401 is the answer."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import Any

import aiohttp
import msgspec

from xhuma.domain.outcomes import Outcome, classify_status
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall
from xhuma.providers.oauth_client import TokenCache, TokenError
from xhuma.security.message_signing import HEADER as SIGNATURE_HEADER
from xhuma.security.message_signing import MessageSigner, load_signing_key
from xhuma.tls import ClientTlsFiles, client_context

_json_decode = msgspec.json.Decoder().decode
json_encode = msgspec.json.Encoder().encode


class JsonHttpAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.username and config.oauth is None:
            secret = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {secret}"
        self._ssl = client_context(config.tls or ClientTlsFiles())
        self._tokens = TokenCache(config.oauth) if config.oauth else None
        self._signer = MessageSigner(load_signing_key(config.signing_key)) if config.signing_key else None

    @property
    def name(self) -> str:
        return self.config.name

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections, ssl=self._ssl),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=self.config.deadline_seconds,
                    sock_connect=min(self.config.connect_timeout, self.config.deadline_seconds),
                ),
            )
        return self._session

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        """The provider's answer within one deadline for everything: the token, the request,
        and after a 401 the new token and the one resend."""
        session = self._session_for_loop()
        started = time.perf_counter_ns()
        deadline = time.monotonic() + self.config.deadline_seconds
        answer, token = await self._attempt(session, call, started, deadline)
        if answer.status == 401 and token is not None and self._tokens is not None:
            # Refused before acting (see the module's docstring): a new token, the same bytes, once.
            self._tokens.invalidate(token)
            if deadline - time.monotonic() > 0:
                answer, _ = await self._attempt(session, call, started, deadline)
        return answer

    async def _attempt(
        self, session: aiohttp.ClientSession, call: UpstreamCall, started: int, deadline: float
    ) -> tuple[UpstreamAnswer, str | None]:
        """One request with this provider's token and signature, and the token it carried."""
        headers: dict[str, str] = {}
        token = None
        if self._tokens is not None:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    token = await self._tokens.token(session)
            except (TokenError, TimeoutError) as exc:
                # No token, so nothing was sent: the provider cannot have acted.
                return _not_sent(started, f"no access token: {_describe(exc)}"), None
            headers["Authorization"] = f"Bearer {token}"
        remaining = max(0.001, deadline - time.monotonic())
        timeout = aiohttp.ClientTimeout(total=remaining, sock_connect=min(self.config.connect_timeout, remaining))
        if self._signer is not None:
            headers[SIGNATURE_HEADER] = self._signer.sign(call.body)
        try:
            async with session.request(
                call.method, call.url, data=call.body or None, headers=headers, timeout=timeout
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never made (or its TLS handshake failed), so the provider
            # cannot have acted on the request.
            return _not_sent(started, _describe(exc)), token
        except (TimeoutError, aiohttp.ClientError) as exc:
            if _refused_in_handshake(exc):
                return _not_sent(started, _describe(exc)), token
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", _since(started), transport_error=_describe(exc)), token
        outcome = classify_status(status)
        payload = _read_object(body)
        if outcome is Outcome.SUCCESSFUL and payload is None and call.operation.success_status != 202:
            # A success we cannot read may still have moved money: treat it as unknown so the
            # outcome is retrieved later rather than guessed.
            outcome = Outcome.UNKNOWN
        return UpstreamAnswer(outcome, status, body, _since(started), payload=payload), token

    async def check_health(self) -> bool:
        """GET the health URL (with the bearer token, when the provider wants one); an answer
        other than 200 within the connect timeout, or no token to be had, means down."""
        if not self.config.health_url:
            return True
        session = self._session_for_loop()
        try:
            token = await self._tokens.token(session) if self._tokens is not None else None
            async with session.get(
                self.config.health_url,
                timeout=aiohttp.ClientTimeout(total=self.config.connect_timeout),
                headers={"Authorization": f"Bearer {token}"} if token else None,
            ) as response:
                await response.read()
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError, TokenError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _not_sent(started_ns: int, error: str) -> UpstreamAnswer:
    return UpstreamAnswer(Outcome.FAILED, None, b"", _since(started_ns), transport_error=error, delivered=False)


def _refused_in_handshake(exc: BaseException) -> bool:
    """Whether the server ended the TLS handshake with an alert after our side thought it done:
    under TLS 1.3 a client certificate the server refuses is told only then, when the request
    has been written but, the handshake never having completed at the server, never read.
    Only certificate alerts count: the server sends them while judging the handshake, and our
    client context allows no renegotiation or post-handshake authentication that could ask for
    a certificate after a request was read (`xhuma.tls.client_context`)."""
    cause: BaseException | None = exc
    while cause is not None:
        reason = str(cause.reason or "") if isinstance(cause, ssl.SSLError) else ""
        if "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _read_object(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        value = _json_decode(body)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _since(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1000


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
