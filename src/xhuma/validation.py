"""Decoding of inbound JSON into wire structs, reporting every bad field at once.

msgspec stops at the first problem, which is what we want on the hot path. Only when a body is
bad do we walk it again against the same struct definitions to name each bad field, so the
error path costs nothing on valid traffic and there is one source of truth for the rules.

Whatever a client sends, the work is bounded: nesting too deep is a format error (not a
RecursionError), at most MAX_ERRORS problems are listed (the walk stops there), strings may not
carry control characters, and numbers in paths and queries are ASCII digits of bounded size.
A bad value echoed in an error is masked as its field's name says (a card number shows its
first 6 and last 4 digits, a CVV nothing)."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, TypeVar

import msgspec

from xhuma.security.masking import mask_field

T = TypeVar("T")

MAX_ERRORS = 20
"""The most problems one error body lists; a body with more says how many were left out."""
MAX_ID = 2**63 - 1
"""The largest number a path or query may name (a database BIGINT)."""
_CONTROL_ESCAPE = re.compile(rb"\\u00[01][0-9a-fA-F]|\\u007[fF]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,19}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class FieldError(msgspec.Struct, rename="camel", omit_defaults=True):
    field: str
    error: str
    invalid_value: Any = None


class InvalidMessage(Exception):
    """The body could not be decoded into the expected message; `errors` names each field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.error}" for e in errors))
        self.errors = errors


def json_value(body: bytes, model: Any = Any, *, strict: bool = True) -> Any:
    """msgspec's decode, with JSON nested too deep for it refused as malformed, not raised as
    RecursionError."""
    try:
        return msgspec.json.decode(body, type=model, strict=strict)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None


def stored_json_value(body: bytes, model: Any = Any) -> Any:
    """`json_value` for a body whose strings are kept as text (operator notes and changes, the
    bank's reports): a string or key with NUL or another control character is refused as a
    msgspec.ValidationError naming it. No such field may hold one, and PostgreSQL refuses NUL in
    text, so taking it would fail at the insert (a 500) instead of at the door."""
    value = json_value(body, model)
    if _CONTROL_ESCAPE.search(body):
        problems = control_characters(json_value(body))
        if problems:
            raise msgspec.ValidationError(f"{problems[0].error} - at `{problems[0].field}`")
    return value


def decode(body: bytes, model: type[T], *, forbid_unknown: bool = False) -> T:
    """Decode and validate `body` as `model`; numeric strings are coerced as the packs need."""
    try:
        message: T = json_value(body, model, strict=False)
    except msgspec.ValidationError as exc:
        first_problem = str(exc)
    except msgspec.DecodeError as exc:
        raise InvalidMessage([FieldError(field="$", error=f"malformed JSON: {exc}")]) from None
    else:
        if _CONTROL_ESCAPE.search(body):
            raise InvalidMessage(control_characters(json_value(body)))
        return message
    try:
        raw = json_value(body)
    except msgspec.DecodeError as exc:
        # Typed decoding can stop at a wrong type before it reaches the broken syntax.
        raise InvalidMessage([FieldError(field="$", error=f"malformed JSON: {exc}")]) from None
    errors = field_errors(raw, model, forbid_unknown=forbid_unknown)
    raise InvalidMessage(errors or [FieldError(field="$", error=first_problem)])


def control_characters(value: Any, path: str = "") -> list[FieldError]:
    """Strings (and keys) carrying NUL or another control character, which no name, reference
    or code may hold and which would reach logs, slips and files downstream."""
    found: list[FieldError] = []
    if isinstance(value, str):
        if _CONTROL.search(value):
            found.append(FieldError(field=path or "$", error="must not contain control characters"))
    elif isinstance(value, dict):
        for key, inner in value.items():
            found += control_characters(key, path or "$") if _CONTROL.search(key) else []
            found += control_characters(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += control_characters(inner, f"{path}[{index}]")
    return found[:MAX_ERRORS]


def whole_number(text: str | None, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """A path or query number: ASCII digits only (not Arabic-Indic or other Unicode digits,
    which int() would take), within [low, high]; None when it is not one."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def is_uuid(text: str) -> bool:
    return bool(UUID_RE.fullmatch(text))


def path_id_errors(path: dict[str, str]) -> list[FieldError]:
    """Ids in a URL path that are not UUIDs: a retry or an advice under such an id could never
    name a message of ours, so it is refused before anything is journalled under it."""
    return [
        FieldError(field=name, error="in the path is not a UUID (8-4-4-4-12 hex)", invalid_value=value[:40])
        for name, value in path.items()
        if not is_uuid(value)
    ]


class _Enough(Exception):
    """MAX_ERRORS problems found: the walk stops."""


def field_errors(value: Any, model: Any, *, forbid_unknown: bool = False) -> list[FieldError]:
    """Violations of `model` in the decoded JSON `value`, each with its dotted path: all of
    them, or the first MAX_ERRORS and a last entry saying the rest were not looked for."""
    errors: list[FieldError] = []
    try:
        _walk(value, model, forbid_unknown, "", errors)
    except _Enough:
        errors.append(FieldError(field="$", error=f"more problems not listed (the first {MAX_ERRORS} are)"))
    return errors


def _walk(value: Any, model: Any, forbid_unknown: bool, path: str, errors: list[FieldError]) -> None:
    found = _problems(value, model, forbid_unknown, path, errors)
    for error in found:
        if len(errors) >= MAX_ERRORS:
            raise _Enough
        errors.append(error)


def _problems(value: Any, model: Any, forbid_unknown: bool, path: str, errors: list[FieldError]) -> list[FieldError]:
    """This node's own problems (returned) and its children's (walked into `errors`)."""
    origin = typing.get_origin(model)
    if origin is typing.Annotated:
        inner = typing.get_args(model)[0]
        if _is_struct(inner) or typing.get_origin(inner) in (list, dict):
            return _problems(value, inner, forbid_unknown, path, errors)
        return _leaf(value, model, path)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(model) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(model)):
            return []
        if len(options) == 1:
            return _problems(value, options[0], forbid_unknown, path, errors)
        return _leaf(value, model, path)
    if _is_struct(model):
        if not isinstance(value, dict):
            return [FieldError(field=path or "$", error="expected an object", invalid_value=mask_field(path, value))]
        known = set()
        for f in msgspec.structs.fields(model):
            known.add(f.encode_name)
            where = f"{path}.{f.encode_name}" if path else f.encode_name
            if f.encode_name not in value:
                if f.required:
                    _walk(None, _Missing, forbid_unknown, where, errors)
                continue
            _walk(value[f.encode_name], f.type, forbid_unknown, where, errors)
        if forbid_unknown:
            for name in value:
                if name not in known:
                    _walk(name, _Unknown, forbid_unknown, f"{path}.{name}" if path else name, errors)
        return []
    if origin is list:
        if not isinstance(value, list):
            return [FieldError(field=path or "$", error="expected an array", invalid_value=mask_field(path, value))]
        (item,) = typing.get_args(model)
        for i, element in enumerate(value):
            _walk(element, item, forbid_unknown, f"{path}[{i}]", errors)
        return []
    if model is _Missing:
        return [FieldError(field=path, error="is required")]
    if model is _Unknown:
        return [FieldError(field=path, error="is not a known field")]
    return _leaf(value, model, path)


class _Missing:
    """Marks a required field that is absent, so it is counted like any other problem."""


class _Unknown:
    """Marks a field the struct does not have (when unknown fields are refused)."""


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _leaf(value: Any, model: Any, path: str) -> list[FieldError]:
    try:
        msgspec.convert(value, model, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc).split(" - at `", 1)[0]
        described = _description(model)
        if described and ("matching regex" in message or message.startswith("Invalid enum value")):
            message = f"must be {described}"  # the rule in words, not the regex
        return [FieldError(field=path or "$", error=message, invalid_value=mask_field(path, value))]
    return []


def _description(model: Any) -> str | None:
    """What the model's Meta says a valid value is (for a union, the first option that says)."""
    if typing.get_origin(model) in (typing.Union, types.UnionType):
        return next(filter(None, map(_description, typing.get_args(model))), None)
    if typing.get_origin(model) is not typing.Annotated:
        return None
    metas = [m for m in typing.get_args(model)[1:] if isinstance(m, msgspec.Meta)]
    return next((m.description for m in metas if m.description), None)


def raw_id(body: bytes) -> str | None:
    """The id of a message we could not validate, when one can be read, for the error body."""
    try:
        value = json_value(body)
    except msgspec.DecodeError:
        return None
    found = value.get("id") if isinstance(value, dict) else None
    return found[:36] if isinstance(found, str) else None
