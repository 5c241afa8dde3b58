"""Running an ASGI app with the fastest server pieces installed (uvloop, httptools)."""

from __future__ import annotations

from typing import Any


def run_asgi(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop=_first_installed("uvloop", "asyncio"),
        http=_first_installed("httptools", "h11"),
        access_log=False,
        log_level="warning",
    )


def _first_installed(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
    except ImportError:
        return fallback
    return preferred
