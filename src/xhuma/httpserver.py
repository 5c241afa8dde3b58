"""Running an ASGI app with the fastest server pieces installed (uvloop, httptools).

The port is bound first, before the app is built (`listen`, then `serve_on`), so a taken port
stops a process before it touches anything else. SIGTERM, SIGINT and SIGHUP each stop the
server the same way: it stops accepting, lets the requests in flight finish (up to
`drain_seconds`), runs the app's shutdown, and returns; the process then exits 0.

With TLS (`serve_on(..., tls=ServerTls(...))`) the listener speaks HTTPS only, and SIGHUP no
longer stops the server: it re-reads the certificate, key and client CA for new connections
(see `xhuma.tls`). Each request's scope then carries the ASGI TLS extension,
`scope["extensions"]["tls"]`, with the client certificate's subject under mutual TLS (uvicorn
does not fill it in: `_guarded_protocol` adds it from the connection's SSL object).

Every connection has a read deadline (`read_seconds`): a client that has not sent a whole request
by then is cut off, so slow clients cannot hold the server's connections."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Generator, MutableMapping
from typing import Any

from xhuma.security.masking import install_log_masking
from xhuma.tls import ServerTls, TlsError, tls_extension

log = logging.getLogger("xhuma.http")
DRAIN_SECONDS = 10.0
"""How long, by default, requests in flight may take to finish once a server is told to stop."""

READ_SECONDS = 30.0
"""How long, by default, a client has to send a whole request (see `_ReadDeadline`)."""

DISCARD_BYTES = 16 * 1024 * 1024
"""How much of a request body the app did not read is read and thrown away before its answer
goes out (see `AnswerAfterTheBody`)."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class CannotListen(Exception):
    """The port cannot be bound (taken, or not ours to take); the message names it."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound and listening on host:port, or CannotListen naming the port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(f"port {port} on {host} is already in use") from None
        raise CannotListen(f"cannot listen on port {port} on {host}: {exc.strerror or exc}") from None
    return sock


def run_asgi(
    app: Any, host: str, port: int, *, drain_seconds: float = DRAIN_SECONDS, context: ssl.SSLContext | None = None
) -> None:
    """Serve `app` on host:port; with `context` (a server SSL context the caller made, as the
    simulators make their own), HTTPS only with that context for the life of the process."""
    serve_on(listen(host, port), app, drain_seconds=drain_seconds, context=context)


def serve_on(
    sock: socket.socket,
    app: Any,
    *,
    drain_seconds: float = DRAIN_SECONDS,
    read_seconds: float = READ_SECONDS,
    tls: ServerTls | None = None,
    context: ssl.SSLContext | None = None,
) -> None:
    """Serve `app` on a socket from `listen` until a stop signal, then drain and return; with
    `tls`, HTTPS only, and SIGHUP reloads the certificates instead of stopping; with `context`,
    HTTPS only with that fixed context. A client that has not sent a whole request
    `read_seconds` after it could start is cut off."""
    import uvicorn

    install_log_masking()  # whatever a server logs, no card number or secret is written in clear
    fixed = tls.context if tls else context

    http = _first_installed("httptools", "h11")
    config = uvicorn.Config(
        AnswerAfterTheBody(app),
        loop=_first_installed("uvloop", "asyncio"),
        http=_guarded_protocol(http, read_seconds, fixed is not None),
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=math.ceil(max(0.0, drain_seconds)),
        ssl_context_factory=(lambda _config, _default: fixed) if fixed is not None else None,
    )
    server = _graceful_server(config, tls)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # the app failed to start; uvicorn has logged why


def _graceful_server(config: Any, tls: ServerTls | None = None) -> Any:
    """uvicorn's Server, stopping on SIGHUP too (reloading the certificates instead, with TLS),
    and returning once it has shut down (uvicorn re-raises the signal afterwards, which would
    end the process with the signal's status)."""
    import uvicorn

    def reload(_signum: int, _frame: Any) -> None:
        assert tls is not None
        try:
            tls.reload()
        except TlsError as exc:
            log.error("SIGHUP: certificates not reloaded, the previous ones stay in use: %s", exc)
            return
        log.warning("SIGHUP: reloaded %s for new connections", ", ".join(str(f) for f in _files(tls)))

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            if threading.current_thread() is not threading.main_thread():
                yield  # signals reach the main thread only
                return
            originals = {
                sig: signal.signal(sig, reload if tls and sig == signal.SIGHUP else self.handle_exit)
                for sig in STOP_SIGNALS
            }
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    return Server(config)


def _files(tls: ServerTls) -> list[Any]:
    return [f for f in (tls.files.cert, tls.files.key, tls.files.client_ca) if f is not None]


def _guarded_protocol(http: str, read_seconds: float, tls: bool) -> type[Any]:
    """uvicorn's HTTP protocol (`http`: "httptools" or "h11"), with a read deadline on every
    connection (`_ReadDeadline`) and, with TLS, the ASGI TLS extension in every request's scope.
    The handshake is over when `connection_made` runs, so the peer's certificate is known then;
    each request of the connection goes to the app through wrappers that carry both."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base: type[Any] = import_from_string(HTTP_PROTOCOLS[http])

    class GuardedProtocol(base):  # type: ignore[misc]
        app: Any
        deadline: _ReadDeadline

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.deadline = _ReadDeadline(self.app, transport, read_seconds)
            self.app = self.deadline
            ssl_object = transport.get_extra_info("ssl_object") if tls else None
            if ssl_object is not None:
                self.app = _TlsScope(self.app, tls_extension(ssl_object))

        def connection_lost(self, exc: Exception | None) -> None:
            self.deadline.cancel()
            super().connection_lost(exc)

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


class _TlsScope:
    """The app, with one connection's TLS extension added to each request's scope."""

    def __init__(self, app: Any, extension: dict[str, Any]) -> None:
        self.app = app
        self.extension = extension

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), "tls": self.extension}
        await self.app(scope, receive, send)


CLOSE_EXTENSION = "xhuma.close"
"""The scope extension that closes the request's connection without an answer."""


def close_connection(scope: MutableMapping[str, Any]) -> bool:
    """Close the request's connection with no answer (what a filtered port looks like to the
    client); False when the server gives no way to (the caller answers instead)."""
    close = (scope.get("extensions") or {}).get(CLOSE_EXTENSION)
    if close is None:
        return False
    close()
    return True


class _ReadDeadline:
    """One connection's read deadline: a client has `seconds` from the connection's opening (or
    from the end of its previous answer) to send a whole request, headers and body; one that
    has not is cut off (the slowloris defence: without it a client dripping one header byte a
    second holds a connection, and its memory, for ever). The clock stops once the app has the
    whole body, so a slow answer of ours is never cut."""

    def __init__(self, app: Any, transport: Any, seconds: float) -> None:
        self.app = app
        self.transport = transport
        self.seconds = seconds
        self.timer: asyncio.TimerHandle | None = None
        self.start()

    def start(self) -> None:
        self.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.seconds, self.cut)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def cut(self) -> None:
        peer = self.transport.get_extra_info("peername")
        log.warning("closed a connection from %s: no whole request within %s s", peer, self.seconds)
        self.transport.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), CLOSE_EXTENSION: self.transport.close}
        if scope["type"] != "http" or not _has_body(scope):
            self.cancel()

        async def receiving() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                self.cancel()
            return message

        async def sending(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.start()  # the next request on this connection has its own deadline

        await self.app(scope, receiving, sending)


class AnswerAfterTheBody:
    """ASGI middleware: before a response starts, read and drop what is left of the request body
    (up to DISCARD_BYTES). A client that writes its whole body before reading (urllib, curl
    without Expect) then reads the answer, a 413 or a 401, instead of a connection reset: a
    server that closes with unread bytes in its receive buffer makes the kernel send a RST,
    which throws away the answer still on its way. Bodies declared larger than the bound are
    not read: that client sees the connection closed."""

    def __init__(self, app: Any, limit: int = DISCARD_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _may_have_body(scope, self.limit):
            await self.app(scope, receive, send)
            return
        finished = False

        async def receiving() -> dict[str, Any]:
            nonlocal finished
            message: dict[str, Any] = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not finished:
                read = 0
                while not finished and read <= self.limit:
                    read += len((await receiving()).get("body", b""))
            await send(message)

        await self.app(scope, receiving, sending)


def _body_length(scope: dict[str, Any]) -> int | None:
    """The request body's declared length: 0 without one, None when chunked (not known yet)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
        if name == b"transfer-encoding":
            return None
    return 0


def _has_body(scope: dict[str, Any]) -> bool:
    return _body_length(scope) != 0


def _may_have_body(scope: dict[str, Any], limit: int) -> bool:
    """Whether the request has a body worth draining: one declared within the bound, or chunked."""
    length = _body_length(scope)
    return length is None or 0 < length <= limit


def _first_installed(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
    except ImportError:
        return fallback
    return preferred
