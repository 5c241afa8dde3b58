"""The floor: a bare pass-through HTTP proxy on the same stack as xhuma (uvicorn with uvloop and
httptools, Starlette in, one pooled aiohttp session out) that does nothing else: no journal, no
routing, no validation, no authentication of its own. Whatever a Python switch on this machine
does, it cannot be faster than this; the benchmarks measure xhuma against it.

    python -m bench.proxy --port 8081 --upstream http://127.0.0.1:8090"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.httpserver import run_asgi

FORWARDED = ("authorization", "content-type", "accept", "if-none-match")


def proxy(upstream: str) -> Starlette:
    sessions: list[aiohttp.ClientSession] = []

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        yield
        await sessions[0].close()

    async def forward(request: Request) -> Response:
        body = await request.body()
        headers = {name: value for name, value in request.headers.items() if name in FORWARDED}
        target = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with sessions[0].request(request.method, target, data=body, headers=headers) as answer:
            content = await answer.read()
            return Response(content, answer.status, media_type=answer.headers.get("content-type"))

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8090 (no trailing slash)")
    args = parser.parse_args()
    run_asgi(proxy(args.upstream.rstrip("/")), "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
