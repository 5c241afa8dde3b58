"""Reading a counterparty's file by its process's `FileSpec`, checked whole.

Pure: bytes in, records or every problem out, on whichever thread calls it (the CLI's main thread
before anything is written). Each line is read on its own so that a problem names its line; a
file with any bad line yields no records at all, only the list of problems."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from xhuma.finance.matching import Record
from xhuma.finance.processes import Process


@dataclass(frozen=True)
class LineProblem:
    line: int
    raw: str
    reason: str


class FileRefused(ValueError):
    def __init__(self, problems: list[LineProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} bad line(s); first: line {problems[0].line}: {problems[0].reason}")


def read_file(process: Process, content: bytes, name: str | None = None) -> list[Record]:
    """Every record of the file (its id: the line number), or FileRefused listing every bad
    line (line 0: the file itself, e.g. a name that does not follow the pattern)."""
    spec = process.file
    problems: list[LineProblem] = []
    pattern = spec.name_regex()
    if name is not None and pattern is not None and not pattern.fullmatch(name):
        problems.append(LineProblem(0, name, f"the file name does not follow {spec.name_pattern}"))
    lines = content.split(b"\n")
    last_ended = len(lines) > 1 and lines[-1] == b""
    if lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    first_trailer = len(lines) - spec.trailer_lines + 1
    header: list[str] = []
    layout = _csv_layout(process, header) if spec.format == "csv" else []
    positions = spec.positions()
    records: list[Record] = []
    for number, raw_bytes in enumerate(lines, start=1):
        ending = _ending_problem(spec.line_ending, raw_bytes, number < len(lines) or last_ended)
        raw_bytes = raw_bytes.removesuffix(b"\r")
        try:
            raw = raw_bytes.decode(spec.encoding)
        except UnicodeDecodeError as exc:
            problems.append(LineProblem(number, raw_bytes.decode("latin-1"), f"not {spec.encoding}: {exc.reason}"))
            continue
        if ending is not None:
            problems.append(LineProblem(number, raw, ending))
            continue
        if number >= first_trailer:
            continue
        cells = next(csv.reader([raw], delimiter=spec.delimiter), []) if spec.format == "csv" else []
        if number <= spec.header_lines:
            if number == spec.header_lines and spec.format == "csv":
                header = [cell.strip() for cell in cells]
                layout = _csv_layout(process, header)
                missing = [c for c in spec.columns.values() if isinstance(c, str) and c not in header]
                if missing:
                    problems.append(LineProblem(number, raw, f"the header has no column {', '.join(missing)}"))
            continue
        if not raw.strip():
            problems.append(LineProblem(number, raw, "an empty line"))
            continue
        try:
            values = _csv_values(layout, cells, header) if spec.format == "csv" else _fixed_values(positions, raw)
            records.append(_record(process, number, values))
        except ValueError as exc:
            problems.append(LineProblem(number, raw, str(exc)))
    if problems:
        raise FileRefused(problems)
    return records


def _ending_problem(wanted: str, raw: bytes, ended: bool) -> str | None:
    if wanted == "any" or not ended:
        return None
    if wanted == "crlf" and not raw.endswith(b"\r"):
        return "ends with LF alone; the file's lines end with CRLF"
    if wanted == "lf" and raw.endswith(b"\r"):
        return "ends with CRLF; the file's lines end with LF"
    return None


Values = dict[str, str | None]


Layout = list[tuple[str, object, int]]
"""A CSV line's fields: (field, its column as configured, its index in the line)."""


def _csv_layout(process: Process, header: list[str]) -> Layout:
    """Worked out once per file (not per line): a named column's index in the header."""
    layout: Layout = []
    for name, column in process.file.columns.items():
        assert not isinstance(column, list)  # checked with the configuration
        if isinstance(column, str):
            layout.append((name, column, header.index(column) if column in header else -1))
        else:
            layout.append((name, column, column - 1))
    return layout


def _csv_values(layout: Layout, cells: list[str], header: list[str]) -> Values:
    if header and len(cells) != len(header):
        raise ValueError(f"{len(cells)} columns, the header has {len(header)}")
    values: Values = {}
    for name, column, index in layout:
        if index < 0:
            raise ValueError(f"{name}: the header has no column {column}")
        if index >= len(cells):
            raise ValueError(f"{name}: no column {column} (the line has {len(cells)})")
        values[name] = cells[index].strip() or None
    return values


def _fixed_values(positions: dict[str, tuple[int, int]], raw: str) -> Values:
    needed = max(end for _, end in positions.values())
    if len(raw) < needed:
        short = min((name for name, (_, end) in positions.items() if end > len(raw)), key=lambda n: positions[n])
        start, end = positions[short]
        raise ValueError(f"{short}: characters {start + 1}-{end} are past the line's end ({len(raw)} characters)")
    return {name: raw[start:end].strip() or None for name, (start, end) in positions.items()}


def _record(process: Process, number: int, values: Values) -> Record:
    spec = process.file
    reference = values.get("reference")
    if reference is None:
        raise ValueError("reference: empty")
    currency = values.get("currency")
    if currency is not None and len(currency) != 3:
        raise ValueError(f"currency: {currency!r} is not a three-letter or three-digit code")
    return Record(
        id=str(number),
        reference=reference,
        amount=_cents(values.get("amount"), spec.amount_unit),
        time_us=_time_us(values.get("time"), spec.time_format, process),
        currency=currency,
        type=values.get("type"),
        meter=values.get("meter"),
        voucher=values.get("voucher"),
    )


def _cents(value: str | None, unit: str) -> int:
    if value is None:
        raise ValueError("amount: empty")
    if unit == "cents":
        if not value.lstrip("-").isdigit():
            raise ValueError(f"amount: {value!r} is not a whole number of cents")
        return int(value)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"amount: {value!r} is not a decimal amount") from None
    cents = amount * 100
    if not amount.is_finite() or cents != cents.to_integral_value():
        raise ValueError(f"amount: {value!r} is not an amount in cents (at most two decimals)")
    return int(cents)


def _time_us(value: str | None, time_format: str, process: Process) -> int:
    if value is None:
        raise ValueError("time: empty")
    try:
        if time_format == "iso":
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = datetime.strptime(value, time_format)
    except ValueError:
        raise ValueError(f"time: {value!r} does not follow {time_format}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=process.zone)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return seconds * 1_000_000 + moment.microsecond
