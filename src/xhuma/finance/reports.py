"""Reports of one process's recon day: the summary and the exceptions, as CSV and as PDF, written
atomically under stable names to the process's outbox (or any folder).

`read` is an operation (one transaction, read only) that takes the day's summary and results
together, so both reports of a day describe the same state; everything else is pure but `write`,
which touches only the folder it is given. It all runs on the caller's thread (the CLI's main
thread, after a `recon run` has committed or on demand through `xhuma report`).

Money in the CSV files is a decimal amount with exactly two places (`12.50`), printed exactly
from integer cents; time differences are whole seconds; times are ISO 8601 in the process's
time zone, with the offset."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from xhuma.domain.currencies import money
from xhuma.finance import store
from xhuma.finance.processes import Process

KINDS = ("summary", "exceptions")
FORMATS = ("csv", "pdf")
STEMS = {"summary": "RECON_SUMMARY", "exceptions": "EXCEPTIONS"}
EXCEPTION_ORDER = {"partially_matched": 0, "unmatched": 1, "expired": 2}


@dataclass(frozen=True)
class DayReport:
    """What the reports of a day are made of, read in one transaction."""

    process: Process
    day: date
    summary: dict[str, Any]
    results: list[dict[str, Any]]
    generated_us: int

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        """Every record the day did not match: partially matched (both sides), unmatched, expired.
        An automatically resolved match is matched (its resolution is in the summary). In order:
        partial matches (the two sides of each together), unmatched, expired; then by time."""
        found = [r for r in self.results if r["status"] in EXCEPTION_ORDER]  # written off: decided, closed
        return sorted(found, key=lambda r: (EXCEPTION_ORDER[r["status"]], r["group_id"] or "", r["side"], r["time_us"]))


class ReportError(ValueError):
    """One line naming the folder or file and why it cannot be written."""


def read(process: Process, day: date, generated_us: int) -> Callable[[Connection], DayReport]:
    """The day's summary and results from one snapshot, so that the figures of the summary are
    those of the exceptions listed (a run committing in between cannot split them). Run it as
    the first thing in its transaction: PostgreSQL takes the isolation level only there."""
    summarise, listing = store.summary(process.name, day), store.results(process.name, day)

    def op(conn: Connection) -> DayReport:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # SQLite: a read transaction is one snapshot already (WAL), from its first read on
        return DayReport(process, day, summarise(conn), listing(conn), generated_us)

    return op


def file_name(process: Process, kind: str, day: date, fmt: str) -> str:
    """`PROCESS_RECON_SUMMARY_YYYYMMDD.csv`: the same name for the same day, so a report written
    again replaces the last; characters a file name should not carry become `_`."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", process.name)
    return f"{safe}_{STEMS[kind]}_{day:%Y%m%d}.{fmt}"


def local_time(process: Process, time_us: int) -> datetime:
    seconds, micros = divmod(time_us, 1_000_000)
    return datetime.fromtimestamp(seconds, process.zone).replace(microsecond=micros)


def iso_time(process: Process, time_us: int) -> str:
    return local_time(process, time_us).isoformat(timespec="seconds")


SUMMARY_COLUMNS = ("process", "date", "category", "count", "amount", "their_amount", "difference", "ours", "theirs")


def summary_rows(report: DayReport) -> list[dict[str, str]]:
    """One row per category of `store.summary`, its figures as they are there (amounts printed
    from cents): `amount` is ours for a match and the record's own for unmatched and expired."""
    rows = []
    for category in store.CATEGORIES:
        figures = report.summary[category]
        rows.append(
            {
                "process": report.process.name,
                "date": report.day.isoformat(),
                "category": category,
                "count": str(figures["count"]),
                "amount": money(figures["amount"]),
                "their_amount": money(figures.get("their_amount")),
                "difference": money(figures.get("difference")),
                "ours": _text(figures.get("ours")),
                "theirs": _text(figures.get("theirs")),
            }
        )
    return rows


EXCEPTION_COLUMNS = (
    "process",
    "date",
    "status",
    "side",
    "missing",
    "record_id",
    "reference",
    "amount",
    "time",
    "record_day",
    "rule",
    "counterparts",
    "differences",
    "reason",
)


def exception_rows(report: DayReport) -> list[dict[str, str]]:
    rows = []
    for r in report.exceptions:
        rows.append(
            {
                "process": report.process.name,
                "date": report.day.isoformat(),
                "status": r["status"],
                "side": r["side"],
                "missing": r["missing"] or "",
                "record_id": r["record_id"],
                "reference": r["reference"] or "",
                "amount": money(r["amount"]),
                "time": iso_time(report.process, r["time_us"]),
                "record_day": r["record_day"],
                "rule": r["rule"] or "",
                "counterparts": " ".join(r["counterparts"]),
                "differences": differences(r["differences"]),
                "reason": reason(report.process, r),
            }
        )
    return rows


def differences(found: dict[str, Any]) -> str:
    """`amount +0.03; time +600 s; currency 710 / 840`: theirs minus ours, or both values."""
    parts = []
    for name, value in sorted(found.items()):
        if name == "amount":
            parts.append(f"amount {money(int(value), signed=True)}")
        elif name == "time":
            parts.append(f"time {int(value):+d} s")
        else:
            parts.append(f"{name} {value}")
    return "; ".join(parts)


def reason(process: Process, row: dict[str, Any]) -> str:
    if row["status"] == "partially_matched":
        return "both sides have it; they differ in " + ", ".join(sorted(row["differences"])) + " (theirs minus ours)"
    where = f"{process.counterparty}'s files" if row["missing"] == "theirs" else "our journal"
    text = f"no record of it in {where}"
    if row["status"] == "expired":
        text += f"; still unmatched {process.expiry_days} days after its own day"
    return text


def hourly_volumes(report: DayReport) -> tuple[list[int], list[int]]:
    """The day's own records (not earlier days' offered again) per hour of the day in the
    process's time zone: (ours, theirs), 24 counts each."""
    ours, theirs = [0] * 24, [0] * 24
    for r in report.results:
        if r["record_day"] != report.day.isoformat():
            continue
        hour = local_time(report.process, r["time_us"]).hour
        (ours if r["side"] == "ours" else theirs)[hour] += 1
    return ours, theirs


def summary_csv(report: DayReport) -> bytes:
    return _csv(SUMMARY_COLUMNS, summary_rows(report))


def exceptions_csv(report: DayReport) -> bytes:
    return _csv(EXCEPTION_COLUMNS, exception_rows(report))


def render(report: DayReport, kind: str, fmt: str) -> bytes:
    if fmt == "csv":
        return summary_csv(report) if kind == "summary" else exceptions_csv(report)
    from xhuma.finance import report_pdf  # reportlab is imported only when a PDF is made

    return report_pdf.summary_pdf(report) if kind == "summary" else report_pdf.exceptions_pdf(report)


def write(
    report: DayReport, folder: Path, kinds: Sequence[str] = KINDS, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Every report asked for, rendered first (nothing is written if one cannot be made), then
    each written atomically; the folder is created if it is missing."""
    rendered = [(file_name(report.process, k, report.day, f), render(report, k, f)) for k in kinds for f in formats]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{folder}: cannot be made a folder for reports: {exc.strerror or exc}") from None
    return [write_atomically(folder / name, content) for name, content in rendered]


def write_atomically(path: Path, content: bytes) -> Path:
    """Write to a hidden temporary name in the same folder, then rename it over `path`: a reader
    of the folder sees the old file or the whole new one, never part of one."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ReportError(f"{path.parent}: cannot write reports there: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ReportError(f"{path}: cannot be written: {exc.strerror or exc}") from None
    return path


def _csv(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _text(value: object) -> str:
    return "" if value is None else str(value)
