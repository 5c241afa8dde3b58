"""Error answers in the SUV interface's own shape, for the switch.

A format error lists every bad field as `{field, msg, value}`, the message reading
"<dotted.path> may not be null" for a missing field, as conforming SUV servers word it."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from xhuma.engine.flow import Reply
from xhuma.validation import FieldError, InvalidMessage, control_characters, field_errors, json_value
from xhuma.vouchers import wire

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


def error_reply(
    status: int,
    error_type: str,
    message: str,
    message_id: str | None,
    *,
    original_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Reply:
    body = wire.ErrorDetail(
        error_type=error_type, error_message=message, id=message_id, original_id=original_id, detail_message=detail
    )
    return Reply(status, _encode(body))


def format_error(errors: list[FieldError], message_id: str | None) -> Reply:
    listed = [wire.FormatError(field=e.field, msg=_wording(e), value=e.invalid_value) for e in errors]
    return error_reply(400, "FORMAT_ERROR", "Bad formatting.", message_id, detail={"formatErrors": listed})


def _wording(error: FieldError) -> str:
    if error.error == "is required" or _is_null(error):
        return f"{error.field} may not be null"
    if error.error == "is not a known field":
        return f"Unrecognized field '{error.field}'"
    if "UUID" in error.error:
        return "UUID must conform to the format 8-4-4-4-12 hexadecimal values"
    return f"{error.field}: {error.error}"


def _is_null(error: FieldError) -> bool:
    """A field sent as JSON null: conforming servers word it as a missing one."""
    return error.invalid_value is None and (
        "got `null`" in error.error or error.error in ("expected an object", "expected an array")
    )


def decode_strict(body: bytes, model: type[T]) -> T:
    """Decode an SUV message; unknown fields are refused, as the interface requires.

    The struct definitions are PPU's tolerant ones, so strictness comes from walking the JSON
    against them first: voucher traffic is small enough for the walk not to matter."""
    try:
        raw = json_value(body)
    except msgspec.DecodeError as exc:
        raise InvalidMessage([FieldError(field="$", error=f"malformed JSON: {exc}")]) from None
    errors = field_errors(raw, model, forbid_unknown=True) or control_characters(raw)
    if errors:
        raise InvalidMessage(errors)
    try:
        return msgspec.convert(raw, model, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidMessage([FieldError(field="$", error=str(exc))]) from None
