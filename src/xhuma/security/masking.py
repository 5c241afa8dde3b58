"""Masking of sensitive data before it is journalled, logged or put in an error message.

Pure: no I/O; callers mask their copy, never the bytes that must be sent (the retailer's answer,
the provider's first request leave intact; what is stored is masked before it is stored).

Two rules, kept apart on purpose:

- **Structured messages are masked by field name only.** A card number (`cardNumber`, `pan`,
  ...) keeps its first 6 and last 4 digits (`411111******1111`, which still fits the PPU and SUV
  pattern `[0-9]{6}[0-9*]{0,13}`, so a stored request re-sent by a retry or store-and-forward
  still decodes); track data, PIN blocks, CVV/CVC, passwords, secrets, `Authorization` and
  access/refresh tokens become `****`; so does a PIN given in clear or hashed (a Pin object,
  `{"type": "CLEAR_PIN", "pin": ...}`). Nothing is masked for what it *looks* like: voucher
  codes, STS tokens, meter numbers, bank account numbers, ids and references are what is sold
  or what is re-sent, and many are Luhn-valid 16-digit numbers. Only the declared free-text
  fields of a message (`errorMessage`, `reason`, ...) get the free-text rule below.
  The meter's own `meter.track2Data` is kept: it is the meter card's data (the meter number
  and its keys, no cardholder data), a retry re-sends it, and its pattern cannot carry a mask.
- **Free text is masked by what it looks like** (log lines, exception texts, transport errors,
  bodies that are not JSON, a refused request's body): digit runs of 13 to 19 digits (single
  spaces or dashes between them allowed) that pass the Luhn check, `Authorization` headers,
  Basic and Bearer credentials, and `name: value` / `"name": "value"` pairs of the names above.

Masking is idempotent (`mask(mask(x)) == mask(x)`) and a message with nothing to mask comes back
as the very same text, so a journal copy is byte for byte what was sent unless it held a secret."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import msgspec

HIDDEN = "****"

PAN_FIELDS = frozenset({"cardnumber", "pan", "primaryaccountnumber", "cardno", "cardpan"})
"""Normalised names (lower case, no `_` or `-`) of card-number fields: first 6 and last 4 kept."""
SECRET_FIELDS = frozenset(
    {
        "track1",
        "track2",
        "track1data",
        "track2data",
        "track3data",
        "trackdata",
        "track2equivalent",
        "pinblock",
        "encryptedpin",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cvn",
        "csc",
        "cardverificationvalue",
        "securitycode",
        "password",
        "passwd",
        "secret",
        "clientsecret",
        "authorization",
        "proxyauthorization",
        "accesstoken",
        "refreshtoken",
    }
)
"""Fields hidden whole."""
FREE_TEXT_FIELDS = frozenset(
    {"errormessage", "detailmessage", "message", "msg", "error", "reason", "faultdescription", "remarks", "comment"}
)
"""Fields of a message that hold prose, where a card number may be written in: free-text rule."""
PIN_TYPES = {"CLEAR_PIN": "pin", "HASHED_PIN": "hash"}
"""A Pin object (`type` names its kind) and the field that holds the PIN itself."""
METER_CARD = ("meter", "track2data")
"""The meter card's track 2 (see the module docstring): kept."""
PIN_ACCOUNT = ("encryptionparameters", "accountnumber")
"""The card number (12 digits of the PAN) an encrypted PIN block is bound to: masked as a PAN."""


def normalised(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def mask_pan(value: str) -> str:
    """A card number with only its first 6 and last 4 digits (of 11 or more) shown; digits are
    counted with the `*` of an earlier masking, so masking twice changes nothing; spaces and
    dashes stay. A number of 10 or fewer shows its first 6 only."""
    positions = [i for i, c in enumerate(value) if c.isdigit() or c == "*"]
    count = len(positions)
    chars = list(value)
    for n, i in enumerate(positions):
        if n >= 6 and not (count > 10 and n >= count - 4):
            chars[i] = "*"
    return "".join(chars)


def masked(value: Any, *, scan: bool = False) -> Any:
    """A JSON-like value (decoded message) with its sensitive fields masked; with `scan`, every
    string gets the free-text rule too (for a copy that is never replayed or re-sent: a refused
    request's body). The value given is not changed."""
    return _value(value, None, scan)


def mask_field(name: str, value: Any) -> Any:
    """One field's value as it may be shown (an error naming a bad field may echo its value);
    `name` may be a path (`tenders[0].cardNumber`), whose last name decides."""
    leaf = re.split(r"[.\[\]]+", name.strip(".[]"))[-1] if name else ""
    return _field(leaf, value, None, None, scan=True)


def _value(value: Any, name: str | None, scan: bool) -> Any:
    """`value` found under the (normalised) field `name`."""
    if isinstance(value, dict):
        kind = value.get("type")
        pin_field = PIN_TYPES.get(kind) if isinstance(kind, str) else None
        return {k: _field(k, v, name, pin_field, scan=scan) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, name, scan) for v in value]
    if isinstance(value, str) and (scan or name in FREE_TEXT_FIELDS):
        return mask_text(value)
    return value


def _field(key: str, value: Any, parent: str | None, pin_field: str | None, *, scan: bool) -> Any:
    name = normalised(key)
    if name in PAN_FIELDS or (parent, name) == PIN_ACCOUNT:
        return _pan_value(value)
    if (name in SECRET_FIELDS and (parent, name) != METER_CARD) or name == pin_field:
        return _hidden(value)
    return _value(value, name, scan)


def _pan_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pan(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return mask_pan(str(value))
    return _hidden(value)


def _hidden(value: Any) -> Any:
    return value if value is None or value == "" else HIDDEN


def _luhn(digits: str) -> bool:
    total = 0
    for n, c in enumerate(reversed(digits)):
        d = int(c)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_GATE = (
    *("card", "pan", "primary", "track", "pin", "cvv", "cvc", "cvn", "csc", "security", "passw", "secret"),
    *("authoriz", "access", "refresh", "encryption", "hash", "basic", "bearer", "\\u"),
)
"""Pieces of every name masked (or an escape that could spell one), lower case: a text with
none of them holds no secret field. Plain `in` tests: a regex alternation costs far more."""
_PAN_RUN = re.compile(r"(?<![0-9])(?<![0-9][ -])[0-9](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])")
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)([^\"'\r\n,}]+)")
_CREDENTIAL = re.compile(r"(?i)\b(basic|bearer)(\s+)([A-Za-z0-9+/=._~-]{6,})")
_PAIR = re.compile(r"""(["']?)\b([A-Za-z][A-Za-z0-9_-]{1,40})\1\s*[:=]\s*("[^"]*"|'[^']*'|[^"',}&\s=]*)""")
"""Any `name: value` or `name=value` (names quoted or not); `_pair` masks those it names."""
_DIGITS = re.compile(r"[0-9]{4}")


def mask_text(text: str) -> str:
    """Free text with card numbers, credentials and secret `name: value` pairs masked. Each rule
    runs only where a plain test says it could apply: a text may be a provider's whole page."""
    low = text.lower()
    if any(piece in low for piece in _GATE):
        text = _PAIR.sub(_pair, text)
        if "authoriz" in low:
            text = _AUTH_HEADER.sub(lambda m: m.group(1) + HIDDEN, text)
        if "basic" in low or "bearer" in low:
            text = _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + HIDDEN, text)
    return _PAN_RUN.sub(_pan_run, text) if _DIGITS.search(text) else text


def _pair(match: re.Match[str]) -> str:
    name = normalised(match.group(2))
    if name not in PAN_FIELDS and name not in SECRET_FIELDS:
        return match.group(0)
    value = match.group(3)
    quote = value[0] if value[:1] in ("'", '"') else ""
    inner = value[1:-1] if quote else value
    if not inner or inner == HIDDEN:
        return match.group(0)
    shown = mask_pan(inner) if name in PAN_FIELDS else HIDDEN
    return match.group(0)[: match.start(3) - match.start(0)] + quote + shown + quote


def _pan_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return mask_pan(run) if _luhn(re.sub(r"[ -]", "", run)) else run


_PROSE = tuple(sorted(FREE_TEXT_FIELDS))
_DIGIT_RUN = re.compile(r"[0-9][0-9 -]{11,}[0-9]")


def _worth_a_look(text: str, scan: bool) -> bool:
    """Whether masking could change the text: most messages of most purchases are returned as
    they are without being decoded (a message's long numbers, tokens say, matter only where
    the free-text rule applies)."""
    low = text.lower()
    if any(piece in low for piece in _GATE):
        return True
    if not _DIGIT_RUN.search(text):
        return False
    return scan or not text.lstrip().startswith(("{", "[")) or any(name in low for name in _PROSE)


def mask_body(text: str, *, scan: bool = False) -> str:
    """A message body as it may be journalled: JSON masked field by field (re-encoded only when
    something was masked), anything else by the free-text rule."""
    if not _worth_a_look(text, scan):
        return text
    try:
        decoded = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return mask_text(text)
    if not isinstance(decoded, dict | list):
        return mask_text(text)
    try:
        result = masked(decoded, scan=scan)
    except RecursionError:  # nested deeper than a message is: read as text
        return mask_text(text)
    return text if result == decoded else msgspec.json.encode(result).decode()


def mask_optional(text: str | None, *, scan: bool = False) -> str | None:
    return None if text is None else mask_body(text, scan=scan)


def mask_bytes(body: bytes) -> bytes:
    """A body to be shown (an echo of what a retailer sent, in an acknowledgement)."""
    text = body.decode("utf-8", "replace")
    shown = mask_body(text)
    return body if shown == text else shown.encode()


def _masking_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the message and its arguments as they are
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return record

    factory.masks = True  # type: ignore[attr-defined]
    return factory


def install_log_masking() -> None:
    """Every log record made from now on in this process has its message, its traceback and its
    stack masked as free text, whichever handler then writes it (ours, uvicorn's, the last
    resort). Installing twice installs once."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "masks", False):
        logging.setLogRecordFactory(_masking_factory(current))
