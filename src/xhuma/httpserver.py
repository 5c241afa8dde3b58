"""Running an ASGI app with the fastest server pieces installed (uvloop, httptools).

The port is bound first, before the app is built (`listen`, then `serve_on`), so a taken port
stops a process before it touches anything else. SIGTERM, SIGINT and SIGHUP each stop the
server the same way: it stops accepting, lets the requests in flight finish (up to
`drain_seconds`), runs the app's shutdown, and returns; the process then exits 0."""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import socket
import sys
import threading
from collections.abc import Generator
from typing import Any

DRAIN_SECONDS = 10.0
"""How long, by default, requests in flight may take to finish once a server is told to stop."""

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


def run_asgi(app: Any, host: str, port: int, *, drain_seconds: float = DRAIN_SECONDS) -> None:
    serve_on(listen(host, port), app, drain_seconds=drain_seconds)


def serve_on(sock: socket.socket, app: Any, *, drain_seconds: float = DRAIN_SECONDS) -> None:
    """Serve `app` on a socket from `listen` until a stop signal, then drain and return."""
    import uvicorn

    config = uvicorn.Config(
        AnswerAfterTheBody(app),
        loop=_first_installed("uvloop", "asyncio"),
        http=_first_installed("httptools", "h11"),
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=math.ceil(max(0.0, drain_seconds)),
    )
    server = _graceful_server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # the app failed to start; uvicorn has logged why


def _graceful_server(config: Any) -> Any:
    """uvicorn's Server, stopping on SIGHUP too, and returning once it has shut down (uvicorn
    re-raises the signal afterwards, which would end the process with the signal's status)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            if threading.current_thread() is not threading.main_thread():
                yield  # signals reach the main thread only
                return
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    return Server(config)


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


def _may_have_body(scope: dict[str, Any], limit: int) -> bool:
    """Whether the request has a body worth draining: one declared within the bound, or chunked."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.isdigit() and 0 < int(value) <= limit
        if name == b"transfer-encoding":
            return True
    return False


def _first_installed(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
    except ImportError:
        return fallback
    return preferred
