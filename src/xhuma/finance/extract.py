"""xhuma's own SWITCH extract: our records of a process's day, written in the process's own file
specification (the columns, format, delimiter, encoding, line ending and name pattern the
counterparty's files follow), so the counterparty can reconcile against us with the same layout.

Pure: records in, the file's name and bytes out (the records come from `store.our_records`; the
CLI writes the file). What `files.read_file` reads back from it is what was written: `reference`
is our transaction id (the id the counterparty was sent), amounts and times as the spec says."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from xhuma.finance.matching import Record
from xhuma.finance.processes import FileSpec, Process


class ExtractError(ValueError):
    """A record the specification cannot hold (e.g. a value wider than its fixed-width column)."""


def extract_name(process: Process, day: date, epoch: int) -> str:
    """The process's name pattern as ours: SWITCH for MARKUP/MARKOFF, the day and the moment."""
    spec = process.file
    pattern = spec.name_pattern or (
        f"XHUMA_{process.counterparty.upper()}_EXTRACT_{process.service.upper()}_SWITCH_YYYYMMDD_EPOCH"
        + (".csv" if spec.format == "csv" else ".txt")
    )
    for side in ("MARKUP", "MARKOFF"):
        pattern = pattern.replace(side, "SWITCH")
    return pattern.replace("YYYYMMDD", f"{day:%Y%m%d}").replace("EPOCH", str(epoch)).replace("*", "")


def write_extract(process: Process, day: date, records: Sequence[Record]) -> bytes:
    spec = process.file
    end = "\r\n" if spec.line_ending == "crlf" else "\n"
    cells = [_cells(process, record) for record in records]
    title = f"XHUMA SWITCH EXTRACT {process.name} {day.isoformat()}"
    trailer = f"TRAILER {len(records)} {sum(r.amount for r in records)}"
    if spec.format == "fixed":
        lines = [title] * spec.header_lines + [_fixed(spec, values) for values in cells]
    else:
        layout = _layout(spec)
        header = [name for _, name in layout]
        lines = [title] * max(0, spec.header_lines - 1) + ([_csv(spec, header)] if spec.header_lines else [])
        lines += [_csv(spec, [values[field] if field else "" for field, _ in layout]) for values in cells]
    lines += [trailer] * spec.trailer_lines
    try:
        return "".join(line + end for line in lines).encode(spec.encoding)
    except UnicodeEncodeError as exc:
        raise ExtractError(f"a value cannot be written in {spec.encoding}: {exc.reason}") from None


def _cells(process: Process, record: Record) -> dict[str, str]:
    spec = process.file
    values = {
        "reference": record.reference or "",
        "amount": _amount(record.amount, spec.amount_unit),
        "time": _time(record.time_us, process),
        "currency": record.currency or "",
        "type": record.type or "",
        "meter": record.meter or "",
        "voucher": record.voucher or "",
    }
    return {name: values[name] for name in spec.columns}


def _amount(cents: int, unit: str) -> str:
    return str(cents) if unit == "cents" else f"{Decimal(cents).scaleb(-2):.2f}"


def _time(time_us: int, process: Process) -> str:
    seconds, micros = divmod(time_us, 1_000_000)
    if process.file.time_format == "iso":
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)
        return moment.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if micros else "") + "Z")
    return datetime.fromtimestamp(seconds, process.zone).replace(microsecond=micros).strftime(process.file.time_format)


def _layout(spec: FileSpec) -> list[tuple[str, str]]:
    """A CSV line's columns in order: (field, its header name), ("", "") for an unused position;
    positioned fields in their places, named ones after them in the spec's order."""
    width = max([c for c in spec.columns.values() if isinstance(c, int)], default=0)
    slots: list[tuple[str, str]] = [("", "")] * width
    for field, column in spec.columns.items():
        if isinstance(column, int):
            slots[column - 1] = (field, field)
    slots += [(field, column) for field, column in spec.columns.items() if isinstance(column, str)]
    return slots


def _csv(spec: FileSpec, cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=spec.delimiter, lineterminator="").writerow(cells)
    return buffer.getvalue()


def _fixed(spec: FileSpec, values: dict[str, str]) -> str:
    positions = spec.positions()
    line = [" "] * max(end for _, end in positions.values())
    for field, (start, end) in positions.items():
        value = values[field]
        if len(value) > end - start:
            raise ExtractError(f"{field}: {value!r} is wider than its {end - start} characters")
        text = value.rjust(end - start) if field == "amount" else value.ljust(end - start)
        line[start:end] = text
    return "".join(line)
