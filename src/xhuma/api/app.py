"""The switch's HTTP server: the PPU v3 retail API with Basic auth, health and OpenAPI.

Handlers stay thin: authenticate, read the body within its size limit, hand the bytes to the
PPU switch. Whatever goes wrong, the client gets a JSON error naming the problem, never a
stack trace."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xhuma.api.admin import admin_routes
from xhuma.api.eft import eft_routes
from xhuma.api.openapi import build_openapi
from xhuma.api.replies import sends_json
from xhuma.api.suv import suv_routes
from xhuma.config import Settings
from xhuma.httpserver import listen, serve_on
from xhuma.node import Node
from xhuma.ppu import operations as ops
from xhuma.ppu.operations import Operation
from xhuma.ppu.replies import error_reply
from xhuma.refusals import credentials_reason, refuse
from xhuma.validation import whole_number

log = logging.getLogger("xhuma.api")
JSON = "application/json"


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = whole_number(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise BodyTooLarge
    return bytes(chunks)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


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

    def ppu_endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            path_ids: dict[str, Any] = request.path_params
            url = str(request.url.path)
            credentials = basic_credentials(request)
            client_id = await state.auth.authenticate(*credentials) if credentials else None
            if client_id is None:
                reply = error_reply(
                    401,
                    "GENERAL_ERROR",
                    "Unauthorized",
                    operation,
                    path_ids.get("id"),
                    detail="valid HTTP Basic credentials are required",
                )
                reason = credentials_reason(credentials)
                await refuse(state.journal, "ppu", operation.name, reply, reason, retail_id=path_ids.get("id"), url=url)
                return Response(reply.body, 401, media_type=JSON, headers={"WWW-Authenticate": 'Basic realm="xhuma"'})
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

    routes = [Route(ops.BASE_PATH + op.path, ppu_endpoint(op), methods=["POST"], name=op.name) for op in ops.ALL]
    routes += suv_routes(state, basic_credentials, read_body, BodyTooLarge)
    routes += eft_routes(state, basic_credentials)
    routes += admin_routes(state, basic_credentials)
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: unexpected},
    )
    app.state.node = state
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Bind the port first (CannotListen if it is taken), then open the database and serve."""
    sock = listen(host, port)
    serve_on(sock, create_app(settings), drain_seconds=settings.drain_seconds)
