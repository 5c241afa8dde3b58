"""The HTTP client every JSON provider adapter shares: one pooled aiohttp session per provider,
Basic auth, a connect timeout within one total deadline per request, and the interfaces' outcome classes. An adapter
module per protocol adds only `prepare`, the mapping of our message to its wire."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import msgspec

from xhuma.domain.outcomes import Outcome, classify_status
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall

_json_decode = msgspec.json.Decoder().decode
json_encode = msgspec.json.Encoder().encode


class JsonHttpAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.username:
            secret = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {secret}"

    @property
    def name(self) -> str:
        return self.config.name

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=self.config.deadline_seconds,
                    sock_connect=min(self.config.connect_timeout, self.config.deadline_seconds),
                ),
            )
        return self._session

    async def send(self, call: UpstreamCall) -> UpstreamAnswer:
        session = self._session_for_loop()
        started = time.perf_counter_ns()
        try:
            async with session.request(call.method, call.url, data=call.body or None) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never made, so the provider cannot have acted on the request.
            return UpstreamAnswer(
                Outcome.FAILED,
                None,
                b"",
                _since(started),
                transport_error=_describe(exc),
                delivered=False,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return UpstreamAnswer(Outcome.UNKNOWN, None, b"", _since(started), transport_error=_describe(exc))
        outcome = classify_status(status)
        payload = _read_object(body)
        if outcome is Outcome.SUCCESSFUL and payload is None and call.operation.success_status != 202:
            # A success we cannot read may still have moved money: treat it as unknown so the
            # outcome is retrieved later rather than guessed.
            outcome = Outcome.UNKNOWN
        return UpstreamAnswer(outcome, status, body, _since(started), payload=payload)

    async def check_health(self) -> bool:
        """GET the health URL; an answer other than 200 within the connect timeout means down."""
        if not self.config.health_url:
            return True
        try:
            async with self._session_for_loop().get(
                self.config.health_url, timeout=aiohttp.ClientTimeout(total=self.config.connect_timeout)
            ) as response:
                await response.read()
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
