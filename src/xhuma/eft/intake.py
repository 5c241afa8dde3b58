"""Taking an EFT file in: identity and duplicates first (§9), then the whole file checked while
its transactions are written in one database transaction, committed only if every record
passed. A bad file leaves nothing but its own rejection on record."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from xhuma.domain.eft_calendar import due_at
from xhuma.domain.eft_transmissions import Finding, TransmissionKey, judge_transmission
from xhuma.eft.check import FileCheck, FileSummary
from xhuma.eft.records import RecordError
from xhuma.storage.db import bulk_insert, now_us
from xhuma.storage.journal import open_file_exception
from xhuma.storage.tables import eft_files, eft_sets, eft_transactions, reconciliation_exceptions

BATCH = 5_000
KIND = {"001/10": "credit", "001/50": "debit", "005/20": "sec_20", "005/60": "sec_60"}


@dataclass(frozen=True)
class IntakeResult:
    file_id: int
    state: str
    """accepted, rejected or redelivered"""
    reason: str | None = None
    summary: FileSummary | None = None
    finding: Finding | None = None
    """A gap or repeat in the sender's transmission numbers, raised as an exception."""


def identity(path: Path) -> tuple[str, str | None]:
    """The file's SHA-256 and, when its first record can be read, its transmission key."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        first = handle.readline()
        digest.update(first)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    head = first.decode("ascii", "replace")
    key = None
    if head.startswith("000") and len(head) >= 57 and head[10:15].isdigit() and head[45:57].isdigit():
        key = f"{head[10:15]}/{head[52:57]}/{head[3]}/{head[45:52]}"
    return digest.hexdigest(), key


def ingest(
    engine: Engine, path: Path, *, progress: Callable[[int], None] | None = None, debit_release: time = time(8, 0)
) -> IntakeResult:
    content_hash, key = identity(path)
    transmission = TransmissionKey.parse(key) if key is not None else None
    finding = None
    try:
        with engine.begin() as conn:
            if transmission is not None:
                _hold_stream(conn, transmission)
            earlier = conn.execute(
                select(eft_files.c.id, eft_files.c.transmission_key, eft_files.c.content_hash).where(
                    eft_files.c.state == "accepted",
                    (eft_files.c.content_hash == content_hash) | (eft_files.c.transmission_key == key),
                )
            ).first()
            if earlier is not None and earlier.content_hash == content_hash:
                raise _Refused("redelivered", f"same file as accepted file {earlier.id}")
            if transmission is not None:
                finding = judge_transmission(
                    transmission,
                    last_seen=_last_seen(conn, transmission),
                    used_by=earlier.id if earlier is not None else None,
                )
                if finding is not None and finding.refuse:
                    raise _Refused("rejected", finding.detail, finding)
            file_id = conn.execute(
                insert(eft_files)
                .values(
                    name=path.name,
                    transmission_key=key,
                    content_hash=content_hash,
                    state="accepted",
                    received_us=now_us(),
                )
                .returning(eft_files.c.id)
            ).scalar_one()
            summary = _load(conn, file_id, path, progress, debit_release)
            taken = conn.execute(select(eft_sets.c.set_key).where(eft_sets.c.set_key.in_(summary.set_keys))).first()
            if taken is not None:
                raise _Duplicate(f"set {taken.set_key} was already accepted")
            conn.execute(insert(eft_sets), [{"set_key": k, "file_id": file_id} for k in summary.set_keys])
            conn.execute(
                update(eft_files)
                .where(eft_files.c.id == file_id)
                .values(
                    content_type=summary.content_type,
                    records=summary.records,
                    transactions=summary.transactions,
                    credit_total=summary.credit_total,
                    debit_total=summary.debit_total,
                )
            )
            if finding is not None:
                open_file_exception(conn, file_id, finding.reason, finding.detail)
    except _Refused as exc:
        return _record_refusal(engine, path, content_hash, key, exc.state, exc.reason, exc.finding)
    except RecordError as exc:
        return _record_refusal(engine, path, content_hash, key, "rejected", str(exc))
    except _Duplicate as exc:
        return _record_refusal(engine, path, content_hash, key, "rejected", str(exc))
    except IntegrityError:
        return _record_refusal(engine, path, content_hash, key, "rejected", "a set of it was accepted meanwhile")
    return IntakeResult(file_id, "accepted", summary=summary, finding=finding)


def _hold_stream(conn: Connection, transmission: TransmissionKey) -> None:
    """One intake at a time per transmission stream until commit, so two files of a sender
    taken at once judge their numbers in turn (SQLite's write lock already does this)."""
    if conn.dialect.name == "postgresql":
        stream = zlib.crc32(transmission.stream.encode()) - 2**31
        conn.execute(text("SELECT pg_advisory_xact_lock(7177003, :stream)"), {"stream": stream})


def _last_seen(conn: Connection, transmission: TransmissionKey) -> int | None:
    """The highest transmission number accepted in the file's stream (numbers are zero-padded,
    so the highest key is the highest number)."""
    highest = conn.execute(
        select(func.max(eft_files.c.transmission_key)).where(
            eft_files.c.state == "accepted", eft_files.c.transmission_key.startswith(transmission.stream)
        )
    ).scalar_one()
    return None if highest is None else TransmissionKey.parse(highest).number


class _Refused(Exception):
    def __init__(self, state: str, reason: str, finding: Finding | None = None) -> None:
        super().__init__(reason)
        self.state, self.reason, self.finding = state, reason, finding


class _Duplicate(Exception):
    pass


def _load(
    conn: Any, file_id: int, path: Path, progress: Callable[[int], None] | None, debit_release: time
) -> FileSummary:
    checker = FileCheck()
    batch: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for raw in handle:
            found = checker.feed(raw)
            if progress is not None:
                progress(len(raw))
            if found:
                batch.append(_row(file_id, found, debit_release))
                if len(batch) >= BATCH:
                    bulk_insert(conn, eft_transactions, batch)
                    batch.clear()
    if checker.line == 0:
        raise RecordError(1, None, "the file is empty")
    summary = checker.finish()
    if batch:
        bulk_insert(conn, eft_transactions, batch)
    return summary


def _row(file_id: int, record: dict[str, Any], debit_release: time) -> dict[str, Any]:
    sec = record["kind"].startswith("005")
    kind = KIND[record["kind"]]
    due = due_at(kind, record["correction date"] if sec else record["action date"], debit_release)
    return {
        "file_id": file_id,
        "line": record["line"],
        "kind": kind,
        "user_code": record["user code"],
        "sequence_number": record["sequence number"],
        "action_date": (record["original action date"] if sec else record["action date"]).isoformat(),
        "amount_cents": record["amount"],
        "user_branch": record["user branch"],
        "user_account": f"{record['user account']:011d}",
        "homing_branch": record["homing branch"],
        "homing_account": str(record["homing account"] or record["nonstandard account"]),
        "account_type": record["account type"],
        "homing_account_name": record["homing account name"],
        "user_reference": record["user reference"],
        "entry_class": None if sec else record["entry class"],
        "original_sequence_number": record["original sequence number"] if sec else None,
        "sec_reason": record["sec reason"] if sec else None,
        "correction_reference": record["correction reference"] if sec else None,
        "state": "received",
        "due_us": int(due.timestamp() * 1_000_000),
        "set_key": record["set key"],
        "correction_date": record["correction date"].isoformat() if sec else None,
    }


def _record_refusal(
    engine: Engine,
    path: Path,
    content_hash: str,
    key: str | None,
    state: str,
    reason: str,
    finding: Finding | None = None,
) -> IntakeResult:
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(eft_files)
            .values(
                name=path.name,
                transmission_key=key,
                content_hash=content_hash,
                state=state,
                error=reason,
                received_us=now_us(),
            )
            .returning(eft_files.c.id)
        ).scalar_one()
        if finding is not None:
            open_file_exception(conn, file_id, finding.reason, finding.detail)
    return IntakeResult(file_id, state, reason, finding=finding)


def files(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(eft_files).order_by(eft_files.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


def transactions(engine: Engine, file_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(eft_transactions)
            .where(eft_transactions.c.file_id == file_id)
            .order_by(eft_transactions.c.line)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]


def unpaids(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(eft_transactions).where(eft_transactions.c.state == "unpaid").order_by(eft_transactions.c.id)
        )
        return [dict(r._mapping) for r in rows]


def take_inbox(engine: Engine, inbox: Path, debit_release: time) -> list[IntakeResult]:
    """Ingest every `.eft` file in the inbox, oldest first, moving each to `accepted/` or
    `refused/` (with a `.why` file beside a refused one)."""
    results = []
    for path in sorted(inbox.glob("*.eft"), key=lambda p: p.stat().st_mtime):
        result = ingest(engine, path, debit_release=debit_release)
        folder = inbox / ("accepted" if result.state == "accepted" else "refused")
        folder.mkdir(exist_ok=True)
        target = folder / f"{result.file_id:06d}-{path.name}"
        path.replace(target)
        if result.reason:
            target.with_suffix(".why").write_text(f"{result.state}: {result.reason}\n")
        results.append(result)
    return results


def exceptions(engine: Engine) -> list[dict[str, Any]]:
    """Open reconciliation exceptions of inbound EFT: those on a transaction, with the
    transaction they concern, and those on a file itself (its transmission number)."""
    exc = reconciliation_exceptions
    query = (
        select(
            exc.c.id,
            exc.c.reason,
            exc.c.detail,
            exc.c.created_us,
            func.coalesce(eft_transactions.c.file_id, exc.c.eft_file_id).label("file_id"),
            eft_transactions.c.line,
            eft_transactions.c.kind,
            eft_transactions.c.user_code,
            eft_transactions.c.sequence_number,
            eft_transactions.c.amount_cents,
            eft_transactions.c.message_id,
        )
        .outerjoin(eft_transactions, eft_transactions.c.tx_id == exc.c.tx_id)
        .where(exc.c.state == "open", eft_transactions.c.id.is_not(None) | exc.c.eft_file_id.is_not(None))
        .order_by(exc.c.id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
