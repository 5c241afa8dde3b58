"""Error answers in the PPU v3 interface's own shape (ErrorDetail)."""

from __future__ import annotations

from typing import Any

import msgspec

from xhuma.engine.flow import Reply
from xhuma.ppu import wire
from xhuma.ppu.operations import Operation
from xhuma.validation import FieldError

_encode = msgspec.json.Encoder().encode


def error_reply(
    status: int,
    error_type: str,
    message: str,
    operation: Operation,
    message_id: str | None,
    *,
    original_id: str | None = None,
    detail: Any = None,
) -> Reply:
    detail_body = wire.ErrorDetail(
        error_type=error_type,
        error_message=message[:20],
        request_type=operation.request_type,
        id=message_id,
        original_id=original_id,
        detail_message=detail,
    )
    return Reply(status, _encode(detail_body))


def format_error(operation: Operation, message_id: str | None, errors: list[FieldError]) -> Reply:
    return error_reply(
        400, "FORMAT_ERROR", "Bad format", operation, message_id, detail=[msgspec.to_builtins(e) for e in errors]
    )
