"""Writing PAYMENTS files in the layout, with the contras, trailers, totals and hash the
checker demands computed here: used to make test and benchmark files, and the shape the
outbound files will take."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from xhuma.eft.check import DEBIT_CLASSES, hash_value
from xhuma.eft.records import format_record

GROUP = 500
"""Standard records per contra: 100,000 records a set then need 200 contras, the most allowed."""


@dataclass(frozen=True)
class UserSet:
    user_code: str
    generation: int
    user_branch: int
    user_account: int
    user_name: str
    action_date: date
    first_sequence: int
    records: list[dict[str, Any]]
    """Standard records: `kind` ("10" credit or "50" debit), `amount`, `homing branch`,
    `homing account` (or `nonstandard account`), `homing account name`, `reference`."""


def transmission_header(content: str, *, created: date, sender: int, destination: int, number: int, name: str) -> str:
    """The `000` record every file starts with (layout §3.1)."""
    return format_record(
        "000",
        {
            "data status": "T",
            "transmission date": created,
            "sender code": sender,
            "sender name": name,
            "transmission number": number,
            "destination code": destination,
            "content type": content,
        },
    )


def write_payments(
    out: IO[str], sets: Iterable[UserSet], *, created: date, sender: int, destination: int, number: int
) -> int:
    """Write a PAYMENTS file (SAMEDAY sets); returns the number of records written."""
    header = transmission_header(
        "PAYMENTS", created=created, sender=sender, destination=destination, number=number, name="XHUMA TEST CLEARING"
    )
    out.write(header + "\n")
    count = 1
    for user_set in sets:
        count += _write_set(out, user_set, created)
    count += 1
    out.write(format_record("999", {"data status": "T", "record count": count}) + "\n")
    return count


def _write_set(out: IO[str], s: UserSet, created: date) -> int:
    head = {"data status": "T", "user code": s.user_code}
    out.write(
        format_record(
            "001/04",
            {
                **head,
                "creation date": created,
                "purge date": s.action_date,
                "first action date": s.action_date,
                "last action date": s.action_date,
                "first sequence number": s.first_sequence,
                "generation number": s.generation,
                "service type": "SAMEDAY",
            },
        )
        + "\n"
    )
    sequence = s.first_sequence
    totals = {"debit": 0, "credit": 0, "debits": 0, "credits": 0, "contras": 0, "hash": 0}
    written = 1
    for side in ("10", "50"):
        group: list[dict[str, Any]] = []
        mine = [r for r in s.records if r["kind"] == side]
        for index, record in enumerate(mine):
            group.append(record)
            if len(group) == GROUP or index == len(mine) - 1:
                for r in group:
                    values = _standard(s, r, sequence)
                    out.write(format_record(f"001/{side}", values) + "\n")
                    _count(totals, side, r["amount"], hash_value(values))
                    sequence += 1
                contra = _contra(s, side, sum(r["amount"] for r in group), sequence)
                out.write(format_record(contra["kind"], contra) + "\n")
                _count(totals, contra["kind"][4:], contra["amount"], hash_value(contra))
                totals["contras"] += 1
                sequence += 1
                written += len(group) + 1
                group = []
    out.write(
        format_record(
            "001/92",
            {
                **head,
                "first sequence number": s.first_sequence,
                "last sequence number": sequence - 1,
                "first action date": s.action_date,
                "last action date": s.action_date,
                "debit count": totals["debits"],
                "credit count": totals["credits"],
                "contra count": totals["contras"],
                "debit total": totals["debit"],
                "credit total": totals["credit"],
                "hash total": totals["hash"] % 10**12,
            },
        )
        + "\n"
    )
    return written + 1


def _count(totals: dict[str, int], identifier: str, amount: int, hashed: int) -> None:
    debit = identifier in ("50", "12")
    totals["debit" if debit else "credit"] += amount
    totals["debits" if debit else "credits"] += 1
    totals["hash"] += hashed


def _standard(s: UserSet, r: dict[str, Any], sequence: int) -> dict[str, Any]:
    credit = r["kind"] == "10"
    return {
        "data status": "T",
        "user branch": s.user_branch,
        "user account": s.user_account,
        "user code": s.user_code,
        "sequence number": sequence,
        "homing branch": r["homing branch"],
        "homing account": r.get("homing account", 0),
        "account type": 1,
        "amount": r["amount"],
        "action date": s.action_date,
        "entry class": 88 if credit else r.get("entry class", 44),
        "tax code": 0,
        "user reference": f"{s.user_name[:10]:<10}{r['reference'][:20]}",
        "homing account name": r["homing account name"],
        "nonstandard account": r.get("nonstandard account", 0),
    }


def _contra(s: UserSet, side: str, total: int, sequence: int) -> dict[str, Any]:
    return {
        "kind": "001/12" if side == "10" else "001/52",
        "data status": "T",
        "user branch": s.user_branch,
        "user account": s.user_account,
        "user code": s.user_code,
        "sequence number": sequence,
        "homing branch": s.user_branch,
        "homing account": s.user_account,
        "account type": 1,
        "amount": total,
        "action date": s.action_date,
        "entry class": 10,
        "tax code": 0,
        "user reference": f"{s.user_name[:10]:<10}CONTRA",
        "nonstandard account": 0,
    }


def random_sets(records: int, *, action_date: date, seed: int = 1, per_set: int = 50_000) -> Iterator[UserSet]:
    """Sets of made-up credits and debits (about one in four a debit), `records` in all."""
    rng = random.Random(seed)
    made = 0
    generation = 0
    while made < records:
        generation += 1
        size = min(per_set, records - made)
        rows = [
            {
                "kind": "50" if rng.random() < 0.25 else "10",
                "amount": rng.randrange(100, 5_000_000),
                "homing branch": rng.randrange(100_000, 999_999),
                "homing account": rng.randrange(10**9, 10**11),
                "homing account name": rng.choice(["A DLAMINI", "P VAN WYK", "L MOKOENA", "N NAIDOO"]),
                "reference": f"REF{made + i:08d}",
                "entry class": rng.choice(sorted(DEBIT_CLASSES)),
            }
            for i in range(size)
        ]
        yield UserSet(
            f"U{generation % 1000:03d}",
            generation,
            250655,
            10000000000 + generation,
            "XHUMA BENCH",
            action_date,
            1,
            rows,
        )
        made += size
