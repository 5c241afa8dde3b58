"""The EFT file layout as one declarative table, documented in `docs/eft-file-format.md`.

Every record kind is a tuple of fields with 1-based inclusive positions and a type; parsing,
formatting, the per-field format checks and the document's field tables (`eft/docs.py`) are
all driven from this table, so a field's position is written down once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RECORD_LENGTH = 180


class FieldType(StrEnum):
    NUMERIC = "N"
    ALPHA = "A"
    DATE = "D"
    FILLER = "F"
    CONSTANT = "C"


@dataclass(frozen=True)
class Field:
    name: str
    start: int
    end: int
    type: FieldType
    constant: str | None = None

    @property
    def width(self) -> int:
        return self.end - self.start + 1

    @property
    def where(self) -> str:
        return f"field {self.name} ({self.start}-{self.end})"


N, A, D, F, C = FieldType.NUMERIC, FieldType.ALPHA, FieldType.DATE, FieldType.FILLER, FieldType.CONSTANT


def _fields(*rows: tuple[str, int, int, FieldType] | tuple[str, int, int, FieldType, str]) -> tuple[Field, ...]:
    fields = tuple(Field(*row) for row in rows)
    position = 1
    for f in fields:
        assert f.start == position, f"layout gap before {f.name}"
        position = f.end + 1
    assert position == RECORD_LENGTH + 1, "layout must cover the whole record"
    return fields


def _head(
    record_id: str, identifier: str | None = None
) -> list[tuple[str, int, int, FieldType, str] | tuple[str, int, int, FieldType]]:
    rows: list[tuple[str, int, int, FieldType, str] | tuple[str, int, int, FieldType]] = [
        ("record id", 1, 3, C, record_id),
        ("data status", 4, 4, A),
    ]
    if identifier is not None:
        rows.append(("record identifier", 5, 6, C, identifier))
    return rows


def _transaction(record_id: str, identifier: str) -> tuple[Field, ...]:
    """Standard, contra (§4.2, §4.3) share one layout."""
    return _fields(
        *_head(record_id, identifier),
        ("user branch", 7, 12, N),
        ("user account", 13, 23, N),
        ("user code", 24, 27, A),
        ("sequence number", 28, 33, N),
        ("homing branch", 34, 39, N),
        ("homing account", 40, 50, N),
        ("account type", 51, 51, N),
        ("amount", 52, 62, N),
        ("action date", 63, 68, D),
        ("entry class", 69, 70, N),
        ("tax code", 71, 71, N),
        ("filler 1", 72, 74, F),
        ("user reference", 75, 104, A),
        ("homing account name", 105, 134, A),
        ("nonstandard account", 135, 154, N),
        ("filler 2", 155, 180, F),
    )


def _set_header(record_id: str) -> tuple[Field, ...]:
    return _fields(
        *_head(record_id, "04"),
        ("user code", 7, 10, A),
        ("creation date", 11, 16, D),
        ("purge date", 17, 22, D),
        ("first action date", 23, 28, D),
        ("last action date", 29, 34, D),
        ("first sequence number", 35, 40, N),
        ("generation number", 41, 44, N),
        ("service type", 45, 54, A),
        ("filler", 55, 180, F),
    )


def _set_trailer(record_id: str) -> tuple[Field, ...]:
    return _fields(
        *_head(record_id, "92"),
        ("user code", 7, 10, A),
        ("first sequence number", 11, 16, N),
        ("last sequence number", 17, 22, N),
        ("first action date", 23, 28, D),
        ("last action date", 29, 34, D),
        ("debit count", 35, 40, N),
        ("credit count", 41, 46, N),
        ("contra count", 47, 52, N),
        ("debit total", 53, 64, N),
        ("credit total", 65, 76, N),
        ("hash total", 77, 88, N),
        ("filler", 89, 180, F),
    )


def _outbound_trailer(record_id: str) -> tuple[Field, ...]:
    return _fields(
        *_head(record_id),
        ("debit count", 5, 13, N),
        ("credit count", 14, 22, N),
        ("hash total", 23, 40, N),
        ("debit total", 41, 54, N),
        ("credit total", 55, 68, N),
        ("filler", 69, 180, F),
    )


LAYOUTS: dict[str, tuple[Field, ...]] = {
    "000": _fields(
        *_head("000"),
        ("transmission date", 5, 10, D),
        ("sender code", 11, 15, N),
        ("sender name", 16, 45, A),
        ("transmission number", 46, 52, N),
        ("destination code", 53, 57, N),
        ("content type", 58, 65, A),
        ("sender reference", 66, 85, A),
        ("filler", 86, 180, F),
    ),
    "999": _fields(*_head("999"), ("record count", 5, 13, N), ("filler", 14, 180, F)),
    "001/04": _set_header("001"),
    "001/10": _transaction("001", "10"),
    "001/50": _transaction("001", "50"),
    "001/12": _transaction("001", "12"),
    "001/52": _transaction("001", "52"),
    "001/92": _set_trailer("001"),
    "005/04": _set_header("005"),
    "005/92": _set_trailer("005"),
    **{
        f"005/{identifier}": _fields(
            *_head("005", identifier),
            ("user branch", 7, 12, N),
            ("user account", 13, 23, N),
            ("user code", 24, 27, A),
            ("sequence number", 28, 33, N),
            ("homing branch", 34, 39, N),
            ("homing account", 40, 50, N),
            ("account type", 51, 51, N),
            ("amount", 52, 62, N),
            ("original action date", 63, 68, D),
            ("original sequence number", 69, 74, N),
            ("user reference", 75, 104, A),
            ("homing account name", 105, 134, A),
            ("nonstandard account", 135, 154, N),
            ("sec reason", 155, 156, N),
            ("correction reference", 157, 176, A),
            ("filler", 177, 180, F),
        )
        for identifier in ("20", "60")
    },
    "011": _fields(
        *_head("011"),
        ("user code", 5, 8, A),
        ("user branch", 9, 14, N),
        ("user account", 15, 25, N),
        ("original action date", 26, 31, D),
        ("unpaid date", 32, 37, D),
        ("filler", 38, 180, F),
    ),
    "013": _fields(
        *_head("013"),
        ("original identifier", 5, 6, N),
        ("unpaid sequence number", 7, 12, N),
        ("original sequence number", 13, 18, N),
        ("homing branch", 19, 24, N),
        ("homing account", 25, 35, N),
        ("amount", 36, 46, N),
        ("user reference", 47, 76, A),
        ("rejection reason", 77, 79, N),
        ("rejection qualifier", 80, 84, N),
        ("homing account name", 85, 114, A),
        ("nonstandard account", 115, 134, N),
        ("filler", 135, 180, F),
    ),
    "014": _outbound_trailer("014"),
    "021": _fields(
        *_head("021"),
        ("user code", 5, 8, A),
        ("generation number", 9, 12, N),
        ("creation date", 13, 18, D),
        ("correction date", 19, 24, D),
        ("response date", 25, 30, D),
        ("filler", 31, 180, F),
    ),
    "023": _fields(
        *_head("023"),
        ("sec identifier", 5, 6, N),
        ("response sequence number", 7, 12, N),
        ("sec sequence number", 13, 18, N),
        ("original user code", 19, 22, A),
        ("original action date", 23, 28, D),
        ("original sequence number", 29, 34, N),
        ("homing branch", 35, 40, N),
        ("homing account", 41, 51, N),
        ("amount", 52, 62, N),
        ("failure reason", 63, 65, N),
        ("failure qualifier", 66, 70, N),
        ("correction reference", 71, 90, A),
        ("nonstandard account", 91, 110, N),
        ("filler", 111, 180, F),
    ),
    "024": _outbound_trailer("024"),
}


def kind_of(line: str) -> str | None:
    """The layout key of a record: its id, and for sets 001 and 005 its identifier at 5-6."""
    record_id = line[:3]
    if record_id in ("001", "005"):
        key = f"{record_id}/{line[4:6]}"
        return key if key in LAYOUTS else None
    return record_id if record_id in LAYOUTS else None
