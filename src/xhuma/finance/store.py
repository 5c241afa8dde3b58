"""Reconciliation state in the journal database: files, their records, runs and results.

Each function returns an operation (a function of a Connection) that runs inside one
transaction, on the caller's thread through `Database.run_sync` (the CLI) or on a database
thread through `Database.run`. Every operation is idempotent by our own id (a file's, a run's):
after a rolled-back transaction it may run again and does the same thing once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)

from xhuma.finance import matching
from xhuma.finance.files import LineProblem
from xhuma.finance.matching import Record
from xhuma.finance.processes import SERVICE_KINDS, Process, day_of, day_start_us, window
from xhuma.storage.db import bulk_insert_rows, now_us
from xhuma.storage.tables import finance_files, finance_records, finance_results, finance_runs, transactions

QUEUED, LOADING, LOADED, ERROR = "QUEUED", "LOADING", "LOADED", "ERROR"
ROLLBACK, FINALIZED = "ROLLBACK", "FINALIZED"
"""After LOADED: rolled back by an approval (`finance.approvals`), or every record settled."""
FILE_STATUSES = (QUEUED, LOADING, LOADED, ERROR, ROLLBACK, FINALIZED)


@dataclass(frozen=True)
class Offer:
    """The file's row after offering it; `duplicate_of` names the file it repeats, if it does."""

    id: str
    status: str
    duplicate_of: dict[str, Any] | None = None


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def offer_file(file_id: str, process: str, name: str, digest: str) -> Callable[[Connection], Offer]:
    """Queue a file, unless one with the same content or name is already taken (not refused,
    not rolled back)."""

    def op(conn: Connection) -> Offer:
        mine = conn.execute(select(finance_files.c.status).where(finance_files.c.id == file_id)).first()
        if mine is not None:
            return Offer(file_id, mine.status)
        same = conn.execute(
            select(finance_files.c.id, finance_files.c.name, finance_files.c.status, finance_files.c.content_hash)
            .where(
                finance_files.c.process == process,
                finance_files.c.status.not_in([ERROR, ROLLBACK]),
                or_(finance_files.c.content_hash == digest, finance_files.c.name == name),
            )
            .limit(1)
        ).first()
        if same is not None:
            reason = "the same content" if same.content_hash == digest else "the same name"
            return Offer(
                file_id, "REFUSED", {"id": same.id, "name": same.name, "status": same.status, "reason": reason}
            )
        at = now_us()
        conn.execute(
            insert(finance_files).values(
                id=file_id,
                process=process,
                name=name,
                content_hash=digest,
                status=QUEUED,
                records=0,
                received_us=at,
                updated_us=at,
            )
        )
        return Offer(file_id, QUEUED)

    return op


def _move(file_id: str, status: str, before: Sequence[str], **values: Any) -> Callable[[Connection], bool]:
    def op(conn: Connection) -> bool:
        moved = conn.execute(
            update(finance_files)
            .where(finance_files.c.id == file_id, finance_files.c.status.in_(before))
            .values(status=status, updated_us=now_us(), **values)
        )
        return bool(moved.rowcount)

    return op


def start_loading(file_id: str) -> Callable[[Connection], bool]:
    return _move(file_id, LOADING, [QUEUED])


def refuse_file(file_id: str, problems: Sequence[LineProblem]) -> Callable[[Connection], bool]:
    error = "\n".join(json.dumps({"line": p.line, "raw": p.raw, "reason": p.reason}) for p in problems)
    return _move(file_id, ERROR, [QUEUED, LOADING], error=error)


RECORD_COLUMNS = (
    *("file_id", "line", "process", "day", "reference", "amount", "currency", "time_us"),
    *("type", "meter", "voucher"),
)


def finish_loading(file_id: str, process: Process, records: Sequence[Record]) -> Callable[[Connection], bool]:
    """Store every record of the file and mark it LOADED, in one transaction (all or nothing)."""
    days: dict[int, str] = {}

    def day(time_us: int) -> str:
        """The record's day in the process's zone, worked out once per quarter hour (every
        zone's offset is a whole number of quarter hours)."""
        quarter = time_us // 900_000_000
        if quarter not in days:
            days[quarter] = day_of(process, quarter * 900_000_000).isoformat()
        return days[quarter]

    rows = [
        (file_id, int(r.id), process.name, day(r.time_us))
        + (r.reference, r.amount, r.currency, r.time_us, r.type, r.meter, r.voucher)
        for r in records
    ]

    def op(conn: Connection) -> bool:
        if not _move(file_id, LOADED, [LOADING], records=len(rows))(conn):
            return False
        conn.execute(delete(finance_records).where(finance_records.c.file_id == file_id))
        bulk_insert_rows(conn, finance_records, RECORD_COLUMNS, rows)
        return True

    return op


def file_row(file_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    def op(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(finance_files).where(finance_files.c.id == file_id)).first()
        return None if row is None else dict(row._mapping)

    return op


@dataclass(frozen=True)
class RunDone:
    run_id: str
    ours: int
    theirs: int
    again: bool
    """The run with this id had already been stored (nothing was done a second time)."""


def run(process: Process, day: date, run_id: str) -> Callable[[Connection], RunDone]:
    """Match the day: our journal records and their loaded records of the day, and those of the
    previous `expiry_days` days still unmatched; what is still unmatched from the first of those
    days is expired. The day's results are replaced as a whole (running it again redoes it)."""
    span = window(process, day)
    first, today = span.days[0].isoformat(), day.isoformat()

    def taken(side: str, record_id: Any) -> Any:
        """Decided by another day's run (matched, partial or expired there), or held (resolved
        by an approval, or settled): not offered again."""
        r = finance_results.c
        return exists().where(
            r.process == process.name,
            r.side == side,
            r.record_id == record_id,
            or_(and_(r.run_day != today, r.status != "unmatched"), held(r)),
        )

    def op(conn: Connection) -> RunDone:
        done = conn.execute(select(finance_runs).where(finance_runs.c.id == run_id)).first()
        if done is not None:
            return RunDone(run_id, done.ours, done.theirs, True)
        with matching.session() as con:
            ours = matching.add(con, "ours", _ours(conn, process, span, taken))
            theirs = matching.add(con, "theirs", _theirs(conn, process, first, today, taken))
            matching.decide(con, process)
            r = finance_results.c
            conn.execute(
                delete(finance_results).where(
                    r.process == process.name,
                    or_(
                        r.run_day == today,
                        and_(r.status == "unmatched", r.record_day >= first, r.record_day <= today),
                    ),
                    ~held(r),
                )
            )
            columns = "?, side, id, day, ?, ?, status, rule, grp, counterparts, differences, resolution, "
            columns += "reference, amount, time_us"
            for chunk in matching.decided_chunks(con, columns, [process.name, today, run_id]):
                bulk_insert_rows(conn, finance_results, RESULT_COLUMNS, chunk)
        conn.execute(
            insert(finance_runs).values(
                id=run_id, process=process.name, day=today, ours=ours, theirs=theirs, at_us=now_us()
            )
        )
        return RunDone(run_id, ours, theirs, False)

    return op


def held(r: Any) -> Any:
    """A result no run replaces: resolved by an approval, or settled."""
    return or_(r.approval_id.is_not(None), r.settlement_id.is_not(None))


RESULT_COLUMNS = (
    *("process", "side", "record_id", "record_day", "run_day", "run_id", "status", "rule", "group_id"),
    *("counterparts", "differences", "resolution", "reference", "amount", "time_us"),
)
"""finance_results' columns in the order a run's rows are written (`matching.DECIDED`'s)."""
Rows = Iterator[Sequence[object]]


def _our_transactions(process: Process, start_us: int, end_us: int) -> list[ColumnElement[bool]]:
    """Our side of the process: the journal's money-moving transactions of its service with its
    counterparty in [start_us, end_us), less what it excludes."""
    t = transactions.c
    kinds = [k for k in SERVICE_KINDS[process.service] if k not in process.exclude]
    states = [s for s in process.exclude if s not in SERVICE_KINDS[process.service]]
    return [
        t.provider == process.counterparty,
        t.kind.in_(kinds),
        t.state.not_in(states),
        t.amount.is_not(None),
        t.created_us >= start_us,
        t.created_us < end_us,
    ]


def our_records(process: Process, day: date) -> Callable[[Connection], list[Record]]:
    """Our records of the day (in the process's zone), oldest first: what our own extract holds."""
    start, end = day_start_us(process, day), day_start_us(process, day + timedelta(days=1))

    def op(conn: Connection) -> list[Record]:
        t = transactions.c
        query = (
            select(t.id, t.amount, t.currency, t.created_us, t.kind, t.meter_id)
            .where(*_our_transactions(process, start, end))
            .order_by(t.created_us, t.id)
        )
        return [Record(r.id, r.id, r.amount, r.created_us, r.currency, r.kind, r.meter_id) for r in conn.execute(query)]

    return op


def _ours(conn: Connection, process: Process, span: Any, taken: Callable[[str, Any], Any]) -> Rows:
    """Rows in matching.COLUMNS order, built by the database (no Python work per record);
    `reference` is our id, the one sent upstream."""
    t = transactions.c
    days = [d.isoformat() for d in span.days]
    day = case(*((t.created_us < start, days[n - 1]) for n, start in enumerate(span.starts_us) if n), else_=days[-1])
    expires = case((t.created_us < span.starts_us[1], literal("true")), else_=literal("false"))
    query = select(t.id, t.id, t.amount, t.created_us, t.currency, t.kind, t.meter_id, null(), expires, day).where(
        *_our_transactions(process, span.starts_us[0], span.end_us), ~taken("ours", t.id)
    )
    return _rows(conn, query)


def _theirs(conn: Connection, process: Process, first: str, today: str, taken: Callable[[str, Any], Any]) -> Rows:
    f = finance_records.c
    key = f.file_id + literal(":") + cast(f.line, String)
    expires = case((f.day == first, literal("true")), else_=literal("false"))
    query = (
        select(key, f.reference, f.amount, f.time_us, f.currency, f.type, f.meter, f.voucher, expires, f.day)
        .join(finance_files, finance_files.c.id == f.file_id)
        .where(
            f.process == process.name,
            finance_files.c.status == LOADED,
            f.day >= first,
            f.day <= today,
            ~taken("theirs", key),
        )
    )
    return _rows(conn, query)


def _rows(conn: Connection, query: Select[Any]) -> Rows:
    for part in conn.execute(query).partitions(matching.CHUNK):
        yield from part


CATEGORIES = (
    "matched",
    "partially_matched",
    "auto_resolved",
    "unmatched_ours",
    "unmatched_theirs",
    "expired",
    "written_off",
)


def summary(process: str, day: date) -> Callable[[Connection], dict[str, Any]]:
    """Counts and amounts (cents) of the day's results: a match counts once however many records
    it joins; `amount` is ours, `their_amount` theirs."""

    def op(conn: Connection) -> dict[str, Any]:
        r = finance_results.c
        auto = and_(r.resolution.is_not(None), r.approval_id.is_(None))  # an approval's is not automatic
        rows = conn.execute(
            select(
                r.side,
                r.status,
                auto.label("auto"),
                func.count(),
                func.count(r.group_id.distinct()),
                func.sum(r.amount),
            )
            .where(r.process == process, r.run_day == day.isoformat())
            .group_by(r.side, r.status, auto)
        ).all()
        out: dict[str, Any] = {"process": process, "date": day.isoformat()}
        for name in CATEGORIES:
            out[name] = {"count": 0, "amount": 0}
        for name in ("matched", "partially_matched", "auto_resolved"):
            out[name]["their_amount"] = 0
        out["expired"].update({"ours": 0, "theirs": 0})
        records = {"ours": 0, "theirs": 0}
        for side, status, is_auto, count, groups, amount in rows:
            amount = int(amount or 0)
            records[side] += count
            name = "auto_resolved" if is_auto else status
            if name == "written_off":
                out[name]["count"] += count
                out[name]["amount"] += amount
            elif name in ("unmatched", "expired"):
                entry = out["unmatched_" + side] if name == "unmatched" else out["expired"]
                entry["count"] += count
                entry["amount"] += amount
                if name == "expired":
                    entry[side] += count
            elif side == "ours":
                out[name]["count"] += groups
                out[name]["amount"] += amount
            else:
                out[name]["their_amount"] += amount
        for name in ("partially_matched", "auto_resolved"):
            out[name]["difference"] = out[name]["their_amount"] - out[name]["amount"]
        out["records"] = records
        out["runs"] = conn.execute(
            select(func.count())
            .select_from(finance_runs)
            .where(finance_runs.c.process == process, finance_runs.c.day == day.isoformat())
        ).scalar_one()
        return out

    return op


LIST_STATUSES = (
    "matched",
    "partially_matched",
    "auto_resolved",
    "unmatched",
    "unmatched_ours",
    "unmatched_theirs",
    "expired",
    "written_off",
)


def results(process: str, day: date, status: str | None = None) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        r = finance_results.c
        query = select(finance_results).where(r.process == process, r.run_day == day.isoformat())
        if status == "auto_resolved":
            query = query.where(r.status == "matched", r.resolution.is_not(None), r.approval_id.is_(None))
        elif status in ("unmatched_ours", "unmatched_theirs"):
            query = query.where(r.status == "unmatched", r.side == status.removeprefix("unmatched_"))
        elif status is not None:
            query = query.where(r.status == status)
        rows = []
        for row in conn.execute(query.order_by(r.side, r.time_us, r.record_id)):
            item = dict(row._mapping)
            item["counterparts"] = json.loads(item["counterparts"] or "[]")
            item["differences"] = json.loads(item["differences"] or "{}")
            item["missing"] = (
                ("theirs" if item["side"] == "ours" else "ours") if item["status"] in ("unmatched", "expired") else None
            )
            rows.append(item)
        return rows

    return op


def files(process: str) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        query = select(finance_files).where(finance_files.c.process == process).order_by(finance_files.c.received_us)
        return [dict(row._mapping) for row in conn.execute(query)]

    return op
