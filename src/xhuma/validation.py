"""Decoding of inbound JSON into wire structs, reporting every bad field at once.

msgspec stops at the first problem, which is what we want on the hot path. Only when a body is
bad do we walk it again against the same struct definitions to name each bad field, so the
error path costs nothing on valid traffic and there is one source of truth for the rules."""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class FieldError(msgspec.Struct, rename="camel", omit_defaults=True):
    field: str
    error: str
    invalid_value: Any = None


class InvalidMessage(Exception):
    """The body could not be decoded into the expected message; `errors` names each field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.error}" for e in errors))
        self.errors = errors


def decode(body: bytes, model: type[T], *, forbid_unknown: bool = False) -> T:
    """Decode and validate `body` as `model`; numeric strings are coerced as the packs need."""
    try:
        return msgspec.json.decode(body, type=model, strict=False)
    except msgspec.ValidationError as exc:
        first_problem = str(exc)
    except msgspec.DecodeError as exc:
        raise InvalidMessage([FieldError(field="$", error=f"malformed JSON: {exc}")]) from None
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        # Typed decoding can stop at a wrong type before it reaches the broken syntax.
        raise InvalidMessage([FieldError(field="$", error=f"malformed JSON: {exc}")]) from None
    errors = field_errors(raw, model, forbid_unknown=forbid_unknown)
    raise InvalidMessage(errors or [FieldError(field="$", error=first_problem)])


def field_errors(value: Any, model: Any, *, forbid_unknown: bool = False, path: str = "") -> list[FieldError]:
    """Every violation of `model` in the decoded JSON `value`, each with its dotted path."""
    origin = typing.get_origin(model)
    if origin is typing.Annotated:
        inner = typing.get_args(model)[0]
        if _is_struct(inner) or typing.get_origin(inner) in (list, dict):
            return field_errors(value, inner, forbid_unknown=forbid_unknown, path=path)
        return _leaf(value, model, path)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(model) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(model)):
            return []
        if len(options) == 1:
            return field_errors(value, options[0], forbid_unknown=forbid_unknown, path=path)
        return _leaf(value, model, path)
    if _is_struct(model):
        if not isinstance(value, dict):
            return [FieldError(field=path or "$", error="expected an object", invalid_value=value)]
        errors: list[FieldError] = []
        known = set()
        for f in msgspec.structs.fields(model):
            known.add(f.encode_name)
            where = f"{path}.{f.encode_name}" if path else f.encode_name
            if f.encode_name not in value:
                if f.required:
                    errors.append(FieldError(field=where, error="is required"))
                continue
            errors += field_errors(value[f.encode_name], f.type, forbid_unknown=forbid_unknown, path=where)
        if forbid_unknown:
            for name in value:
                if name not in known:
                    where = f"{path}.{name}" if path else name
                    errors.append(FieldError(field=where, error="is not a known field"))
        return errors
    if origin is list:
        if not isinstance(value, list):
            return [FieldError(field=path or "$", error="expected an array", invalid_value=value)]
        (item,) = typing.get_args(model)
        errors = []
        for i, element in enumerate(value):
            errors += field_errors(element, item, forbid_unknown=forbid_unknown, path=f"{path}[{i}]")
        return errors
    return _leaf(value, model, path)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _leaf(value: Any, model: Any, path: str) -> list[FieldError]:
    try:
        msgspec.convert(value, model, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc).split(" - at `", 1)[0]
        return [FieldError(field=path or "$", error=message, invalid_value=value)]
    return []


def raw_id(body: bytes) -> str | None:
    """The id of a message we could not validate, when one can be read, for the error body."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    found = value.get("id") if isinstance(value, dict) else None
    return found[:36] if isinstance(found, str) else None
