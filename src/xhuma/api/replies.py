"""JSON answers of the operator API."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

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
