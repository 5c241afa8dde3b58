"""JSON answers of the operator API, and the one way every route reads a body: within a limit."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from xhuma.validation import whole_number

JSON = "application/json"


def json_reply(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(value), status, media_type=JSON, headers=headers)


def sends_json(request: Request) -> bool:
    """Whether a request's body may be read as JSON: no Content-Type (many tills send none) or
    a JSON one. Anything else (text/plain, a form) is refused with 415, not guessed at."""
    declared = request.headers.get("content-type")
    if declared is None:
        return True
    media = declared.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


class BodyTooLarge(Exception):
    """A request body beyond its route's limit; the app answers 413 in the route's own shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body exceeds {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is declared or read beyond `limit` bytes:
    no route holds more than its limit in memory."""
    declared = whole_number(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise BodyTooLarge(limit)
    return bytes(chunks)
