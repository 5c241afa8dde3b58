"""One record: its fields read, written and format-checked, all from the layout table.

Reading yields typed values (N as int, D as date, A as text without trailing spaces);
writing pads each to its width, so `format_record(kind, parse_record(kind, line)) == line`
for every valid record."""

from __future__ import annotations

from datetime import date
from typing import Any

from xhuma.eft.layout import LAYOUTS, RECORD_LENGTH, Field, FieldType


class RecordError(ValueError):
    """A field that breaks the layout or a rule; `str()` is the report the file check prints."""

    def __init__(self, line: int, field: Field | None, reason: str, *, column: int | None = None) -> None:
        where = f"line {line}"
        if field is not None:
            where += f", {field.where}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {reason}")
        self.line = line
        self.field = field.name if field else None
        self.reason = reason


def read_date(text: str) -> date | None:
    """YYMMDD in 2000-2099, or None when it is not a real date."""
    if len(text) != 6 or not text.isdigit():
        return None
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        return None


_NUMERIC, _ALPHA, _DATE, _FILLER, _CONSTANT = range(5)
_CODES = {
    FieldType.NUMERIC: _NUMERIC,
    FieldType.ALPHA: _ALPHA,
    FieldType.DATE: _DATE,
    FieldType.FILLER: _FILLER,
    FieldType.CONSTANT: _CONSTANT,
}
_PLANS = {kind: [(f, f.start - 1, f.end, _CODES[f.type]) for f in fields] for kind, fields in LAYOUTS.items()}
"""The layout flattened for the hot loop: a million records are read field by field."""


def parse_record(kind: str, line: str, number: int) -> dict[str, Any]:
    """The record's fields by name, each checked for its type's format, left to right. The
    line is known to be printable ASCII (the file check looks at the bytes first)."""
    values: dict[str, Any] = {}
    for f, start, end, code in _PLANS[kind]:
        raw = line[start:end]
        if code == _NUMERIC:
            if not raw.isdigit():
                raise RecordError(number, f, f"not numeric: {raw!r}")
            values[f.name] = int(raw)
        elif code == _ALPHA:
            values[f.name] = raw.rstrip(" ")
        elif code == _DATE:
            day = read_date(raw)
            if day is None:
                raise RecordError(number, f, f"not a date (YYMMDD): {raw!r}")
            values[f.name] = day
        elif code == _FILLER:
            if not raw.isspace():
                raise RecordError(number, f, "filler must be spaces")
        elif raw != f.constant:
            raise RecordError(number, f, f"expected {f.constant!r}, found {raw!r}")
    return values


def format_record(kind: str, values: dict[str, Any]) -> str:
    """A record of `kind` from its field values (missing numbers are zeros, missing text blank)."""
    parts = []
    for f in LAYOUTS[kind]:
        value = values.get(f.name)
        if f.type is FieldType.CONSTANT:
            parts.append(f.constant or "")
        elif f.type is FieldType.FILLER:
            parts.append(" " * f.width)
        elif f.type is FieldType.NUMERIC:
            text = str(int(value or 0))
            if len(text) > f.width:
                raise ValueError(f"{f.name}: {value} does not fit in {f.width} digits")
            parts.append(text.zfill(f.width))
        elif f.type is FieldType.DATE:
            parts.append(value.strftime("%y%m%d") if isinstance(value, date) else "000000")
        else:
            text = str(value or "")
            if len(text) > f.width or not (text.isascii() and text.isprintable()):
                raise ValueError(f"{f.name}: {text!r} is not printable ASCII of at most {f.width} characters")
            parts.append(text.ljust(f.width))
    line = "".join(parts)
    assert len(line) == RECORD_LENGTH
    return line
