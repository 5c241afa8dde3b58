"""The switch's HTTP server: the PPU v3 retail API, the other APIs' routes, health and OpenAPI,
behind one authentication layer (`api/access.py`).

Handlers stay thin: read the body within its size limit, hand the bytes to the PPU switch.
Whatever goes wrong, the client gets a JSON error naming the problem, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xhuma import metrics
from xhuma.api.access import CredentialsBackend, Deny, OperatorNetworks, Refusal, principal, protect, refusal_headers
from xhuma.api.admin import admin_routes
from xhuma.api.admin_finance import finance_routes
from xhuma.api.eft import eft_routes
from xhuma.api.monitoring import monitoring_routes
from xhuma.api.oauth import oauth_routes
from xhuma.api.openapi import build_openapi
from xhuma.api.replies import BodyTooLarge, json_reply, read_body, sends_json
from xhuma.api.suv import suv_routes
from xhuma.config import Settings
from xhuma.httpserver import listen, serve_on
from xhuma.node import Node
from xhuma.ppu import operations as ops
from xhuma.ppu.operations import Operation
from xhuma.ppu.replies import error_reply
from xhuma.refusals import refuse
from xhuma.security.lockout import Lockout
from xhuma.tls import ServerTls

log = logging.getLogger("xhuma.api")
JSON = "application/json"


class RefuseControlCharactersInUrl:
    """ASGI middleware: a path or query carrying NUL or another control character (%00, %1f)
    is answered 400 before any route sees it. No id, name or filter holds one, and PostgreSQL
    refuses NUL in text, so letting it through would be a 500 at the first query."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (_has_control(scope["path"]) or _has_control(unquote(scope["query_string"]))):
            body = b'{"errorType":"FORMAT_ERROR","errorMessage":"control characters in the URL"}'
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", JSON.encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def create_app(settings: Settings) -> Starlette:
    state = Node(settings, run_worker=settings.serve_runs_worker, watch_providers=True)
    openapi = msgspec.json.encode(build_openapi())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    def ppu_denial(operation: Operation) -> Deny:
        async def deny(request: Request, refusal: Refusal) -> Response:
            words = {401: "Unauthorized", 403: "Forbidden", 429: "Too many failed logins"}[refusal.status]
            path_id = request.path_params.get("id")
            reply = error_reply(refusal.status, "GENERAL_ERROR", words, operation, path_id, detail=refusal.reason)
            await refuse(
                state.journal, "ppu", operation.name, reply, refusal.reason, retail_id=path_id, url=request.url.path
            )
            return Response(reply.body, refusal.status, media_type=JSON, headers=refusal_headers(refusal))

        return deny

    def ppu_endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            path_ids: dict[str, Any] = request.path_params
            url = str(request.url.path)
            client_id = principal(request).client_id
            if not sends_json(request):
                reply = error_reply(
                    415,
                    "FORMAT_ERROR",
                    "Unsupported Content-Type",
                    operation,
                    path_ids.get("id"),
                    detail="the body must be application/json",
                )
                reason = f"Content-Type {request.headers['content-type'][:60]} is not JSON"
                await refuse(state.journal, "ppu", operation.name, reply, reason, client_id=client_id, url=url)
                return Response(reply.body, 415, media_type=JSON)
            try:
                body = await read_body(request, settings.max_body_bytes)
            except BodyTooLarge:
                reply = error_reply(
                    413,
                    "FORMAT_ERROR",
                    "Body too large",
                    operation,
                    path_ids.get("id"),
                    detail=f"the body exceeds {settings.max_body_bytes} bytes",
                )
                reason = f"body exceeds {settings.max_body_bytes} bytes"
                await refuse(
                    state.journal,
                    "ppu",
                    operation.name,
                    reply,
                    reason,
                    client_id=client_id,
                    retail_id=path_ids.get("id"),
                    url=url,
                )
                return Response(reply.body, 413, media_type=JSON)
            with metrics.retail_leg("ppu"):
                reply = await state.switch.handle(operation, client_id, path_ids, body, url)
            return Response(reply.body, reply.status, media_type=JSON)

        return endpoint

    async def health(_request: Request) -> Response:
        if not state.ready:
            return JSONResponse({"status": "starting"}, 503)
        return JSONResponse({"status": "ok"})

    async def openapi_document(_request: Request) -> Response:
        return Response(openapi, media_type=JSON)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"errorType": "GENERAL_ERROR", "errorMessage": exc.detail}, exc.status_code)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"errorType": "GENERAL_ERROR", "errorMessage": "Internal error", "detailMessage": type(exc).__name__},
            500,
        )

    async def too_large(request: Request, exc: Exception) -> Response:
        """A body beyond its route's limit on a route that does not answer it itself (the retail
        APIs journal theirs): the bank's shape on /inbound, the operator API's elsewhere."""
        assert isinstance(exc, BodyTooLarge)
        if request.url.path.startswith("/inbound/"):
            return json_reply({"message": str(exc)}, 413)
        return json_reply({"error": str(exc), "field": "body"}, 413)

    routes = [
        Route(ops.BASE_PATH + op.path, protect("ppu", ppu_denial(op), ppu_endpoint(op)), methods=["POST"], name=op.name)
        for op in ops.ALL
    ]
    routes += suv_routes(state)
    routes += eft_routes(state)
    routes += admin_routes(state)
    routes += finance_routes(state)
    routes += monitoring_routes(state)
    lockout = Lockout(lock_seconds=settings.lockout_seconds)
    routes += oauth_routes(state, lockout)
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, BodyTooLarge: too_large, Exception: unexpected},
        middleware=[
            Middleware(RefuseControlCharactersInUrl),
            Middleware(OperatorNetworks, networks=settings.admin_networks, close=settings.close_on_unlisted_address),
            Middleware(
                AuthenticationMiddleware,
                backend=CredentialsBackend(state.auth, lockout, state.tokens, settings.close_on_unlisted_address),
            ),
        ],
    )
    app.state.node = state
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Bind the port first (CannotListen if it is taken), then open the database and serve
    (HTTPS only when `settings.tls` is set)."""
    sock = listen(host, port)
    tls = ServerTls(settings.tls) if settings.tls else None
    serve_on(
        sock,
        create_app(settings),
        drain_seconds=settings.drain_seconds,
        read_seconds=settings.read_timeout_seconds,
        tls=tls,
    )
