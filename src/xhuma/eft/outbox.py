"""The output files: UNPAIDS (layout §6), the inbound credits and debits the homing bank
rejected and the originals successful corrections returned, one set per (user code, user
account, original action date); and SECFAIL (§7), the corrections that could not be applied,
one set per SEC set. Each file is complete on disk before its rows are marked, and appears in
the outbox under its name only after that commit."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, func, select, update

from xhuma.eft.check import hash_value
from xhuma.eft.messages import CORRECTS
from xhuma.eft.records import format_record
from xhuma.eft.writer import transmission_header
from xhuma.storage.tables import eft_transactions

REASONS = {
    "AC01": 26,
    "AC04": 12,
    "AC06": 6,
    "AG01": 3,
    "AM04": 2,
    "AM05": 28,
    "MD01": 30,
    "MD06": 34,
    "MD07": 18,
    "MS02": 4,
    "MS03": 28,
    "NARR": 28,
}
"""ISO 20022 reason codes the bank reports, as the EFT unpaid codes of §10.3 (28, recall or
withdrawal, where no closer code exists)."""
ALLOWED_FOR_CREDITS = frozenset({5, 6, 8, 10, 12, 14, 16, 18, 26, 28, 56})


def eft_code(reason: str | None, kind: str) -> int:
    code = REASONS.get(reason or "", 28)
    return code if kind == "debit" or code in ALLOWED_FOR_CREDITS else 28


Record = tuple[dict[str, Any], str]
"""A record's field values, and the side its totals count it on ("debit" or "credit")."""
OutboundSet = tuple[str, dict[str, Any], str, list[Record], str]
"""Header kind and values, record kind and records, trailer kind."""


def _outbound_file(out: TextIO, content: str, sets: Iterable[OutboundSet], **header: Any) -> int:
    """An outbound file: each set's header, records and a trailer with counts, totals and the
    18-digit hash total (§6.3, §7.3); returns the number of records."""
    out.write(transmission_header(content, name="XHUMA HOMING BANK", **header) + "\n")
    count = 1
    for header_kind, head, record_kind, records, trailer_kind in sets:
        out.write(format_record(header_kind, {"data status": "T", **head}) + "\n")
        totals = {"debit count": 0, "credit count": 0, "hash total": 0, "debit total": 0, "credit total": 0}
        for values, side in records:
            out.write(format_record(record_kind, {"data status": "T", **values}) + "\n")
            totals[f"{side} count"] += 1
            totals[f"{side} total"] += values["amount"]
            totals["hash total"] += hash_value(values)
        totals["hash total"] %= 10**18
        out.write(format_record(trailer_kind, {"data status": "T", **totals}) + "\n")
        count += len(records) + 2
    count += 1
    out.write(format_record("999", {"data status": "T", "record count": count}) + "\n")
    return count


def _homing(row: dict[str, Any]) -> dict[str, int]:
    """The non-standard rule of §4.2: a number longer than 11 digits goes in its own field."""
    number = row["homing_account"]
    long = len(number) > 11
    return {"homing account": 0 if long else int(number), "nonstandard account": int(number) if long else 0}


def write_unpaids(
    out: TextIO, rows: Iterable[dict[str, Any]], *, created: date, sender: int, destination: int, number: int
) -> int:
    """An UNPAIDS file: one set per (user code, user account, original action date)."""

    def key(r: dict[str, Any]) -> tuple[str, int, str, str]:
        return (r["user_code"], r["user_branch"], r["user_account"], r["action_date"])

    def sets() -> Iterator[OutboundSet]:
        for (user_code, branch, account, action_date), group in groupby(sorted(rows, key=key), key=key):
            head = {
                "user code": user_code,
                "user branch": branch,
                "user account": int(account),
                "original action date": date.fromisoformat(action_date),
                "unpaid date": created,
            }
            records: list[Record] = []
            for sequence, row in enumerate(group, start=1):
                side = CORRECTS.get(row["kind"], row["kind"])
                values = {
                    "original identifier": 10 if side == "credit" else 50,
                    "unpaid sequence number": sequence,
                    "original sequence number": row["original_sequence_number"] or row["sequence_number"],
                    "homing branch": row["homing_branch"],
                    **_homing(row),
                    "amount": row["amount_cents"],
                    "user reference": row["user_reference"],
                    "rejection reason": eft_code(row["reason_code"], side),
                    "rejection qualifier": 0,
                    "homing account name": row["homing_account_name"],
                }
                records.append((values, side))
            yield "011", head, "013", records, "014"

    return _outbound_file(
        out, "UNPAIDS", sets(), created=created, sender=sender, destination=destination, number=number
    )


def write_outbox(engine: Engine, outbox: Path, *, today: date, sender: int, destination: int) -> Path | None:
    """The unpaids in no file yet, as the next UNPAIDS file."""
    return _write(
        engine,
        outbox,
        "UNPAIDS",
        eft_transactions.c.state == "unpaid",
        eft_transactions.c.unpaid_file,
        write_unpaids,
        today=today,
        sender=sender,
        destination=destination,
    )


def _write(
    engine: Engine,
    outbox: Path,
    content: str,
    which: Any,
    marker: Any,
    writer: Any,
    *,
    today: date,
    sender: int,
    destination: int,
) -> Path | None:
    """Write the rows `which` selects and `marker` does not yet name as the next `content` file,
    None when there are none. The file is complete on disk (as `.part`) before the rows are
    marked, and renamed after the commit; a crash in between leaves a `.part` whose rows are
    marked, which the next run finishes by renaming it."""
    outbox.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One writer of output files at a time across processes (SQLite's write lock does
            # the same there): file numbers and the rows marked must not interleave.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7177002)")
        marked = set(conn.execute(select(func.distinct(marker))).scalars())
        for leftover in outbox.glob(f"{content}-*.eft.part"):
            if leftover.name.removesuffix(".part") in marked:
                os.replace(leftover, outbox / leftover.name.removesuffix(".part"))
            else:
                leftover.unlink()
        rows = [dict(r._mapping) for r in conn.execute(select(eft_transactions).where(which, marker.is_(None)))]
        if not rows:
            return None
        # One transmission-number sequence for all our outbound files (§9).
        number = 1 + sum(
            int(conn.execute(select(func.count(func.distinct(column)))).scalar_one())
            for column in (eft_transactions.c.unpaid_file, eft_transactions.c.secfail_file)
        )
        name = f"{content}-{today:%Y%m%d}-{number:07d}.eft"
        partial = outbox / (name + ".part")
        with partial.open("w") as out:
            writer(out, rows, created=today, sender=sender, destination=destination, number=number)
            out.flush()
            os.fsync(out.fileno())
        conn.execute(
            update(eft_transactions)
            .where(eft_transactions.c.id.in_([r["id"] for r in rows]))
            .values({marker.name: name})
        )
    os.replace(partial, outbox / name)
    return outbox / name


def write_secfail(
    out: TextIO, rows: Iterable[dict[str, Any]], *, created: date, sender: int, destination: int, number: int
) -> int:
    """An SECFAIL file: per SEC set, the corrections that were not applied, with why."""

    def sets() -> Iterator[OutboundSet]:
        ordered = sorted(rows, key=lambda r: (r["set_key"], r["sequence_number"]))
        for set_key, group in groupby(ordered, key=lambda r: str(r["set_key"])):
            members = list(group)
            _record_id, requester, generation, creation = set_key.split("/")
            head = {
                "user code": requester,
                "generation number": int(generation),
                "creation date": date(2000 + int(creation[:2]), int(creation[2:4]), int(creation[4:])),
                "correction date": date.fromisoformat(members[0]["correction_date"]),
                "response date": created,
            }
            records: list[Record] = []
            for sequence, row in enumerate(members, start=1):
                values = {
                    "sec identifier": 20 if row["kind"] == "sec_20" else 60,
                    "response sequence number": sequence,
                    "sec sequence number": row["sequence_number"],
                    "original user code": row["user_code"],
                    "original action date": date.fromisoformat(row["action_date"]),
                    "original sequence number": row["original_sequence_number"],
                    "homing branch": row["homing_branch"],
                    **_homing(row),
                    "amount": row["amount_cents"],
                    "failure reason": int(row["failure_code"]),
                    "failure qualifier": 0,
                    "correction reference": row["correction_reference"],
                }
                records.append((values, "debit" if row["kind"] == "sec_20" else "credit"))
            yield "021", head, "023", records, "024"

    return _outbound_file(
        out, "SECFAIL", sets(), created=created, sender=sender, destination=destination, number=number
    )


def write_secfail_outbox(engine: Engine, outbox: Path, *, today: date, sender: int, destination: int) -> Path | None:
    """The corrections that failed and are in no file yet, as the next SECFAIL file."""
    return _write(
        engine,
        outbox,
        "SECFAIL",
        eft_transactions.c.state == "sec_failed",
        eft_transactions.c.secfail_file,
        write_secfail,
        today=today,
        sender=sender,
        destination=destination,
    )
