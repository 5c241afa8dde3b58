"""Settlement: per counterparty per period, who owes whom how much, from the reconciled results.

What is settled is what reconciliation agreed: each *unit* is one match (a group of records of
both sides, as matching or an approval left it `matched`) or one record accepted as is, whose
record day (our records' day; theirs when we have none) falls in the period and which no approved
settlement holds yet. Its amount is ours, or theirs when a resolution was in favour of theirs (or
of the counterparty by name). By our record's transaction a unit is a `sale`, a sale since
`reversed`, or a `refund` (theirs-only units: by their `type`). So principal = approved (sales
and reversed sales) - reversed - refunded. Fees (`xhuma.finance.fees`) are charged on sales only,
in time order, with monthly tiers counting this rule's sales in approved settlements of the
month before this one.

A settlement is drafted (DRAFT, with every unit, record and fee line stored) and takes effect
when its proposal is approved (`finance.approvals`): then each of its records' results gets its
`settlement_id` (a result with one is never in another settlement, nor replaced by a run), the
settlement is APPROVED and frozen, and a loaded file all of whose records are settled (or
written off) is FINALIZED. Operations here run in the caller's transaction on a database
thread (or the CLI's, through `Database.run_sync`); `draft` is idempotent by our own id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, String, and_, cast, exists, func, insert, literal, or_, select, update

from xhuma.finance import fees as fee_rules
from xhuma.finance.fees import FeeRule
from xhuma.finance.processes import Finance, Process
from xhuma.finance.store import FINALIZED, LOADED
from xhuma.storage.db import bulk_insert, now_us
from xhuma.storage.tables import (
    finance_files,
    finance_records,
    finance_results,
    finance_settlement_fees,
    finance_settlement_records,
    finance_settlement_units,
    finance_settlements,
    transactions,
    vouchers,
)

DRAFT, APPROVED, REJECTED = "DRAFT", "APPROVED", "REJECTED"
SALE, REVERSED, REFUND = "sale", "reversed", "refund"
THEIR_REFUNDS = {"refund", "refunded"}
THEIR_REVERSALS = {"reversal", "reversed"}


class SettlementRefused(ValueError):
    """Why a settlement cannot be drafted or approved; nothing was changed (`status` and `field`
    as `approvals.ApprovalRefused`'s)."""

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Unit:
    key: str
    process: str
    service: str
    category: str
    month: str
    time_us: int
    reference: str | None
    amount: int
    currency: str | None
    provider: str | None
    product: str | None
    client: str | None
    records: tuple[tuple[str, str], ...]
    """(side, record id) of every record it joins."""


@dataclass(frozen=True)
class FeeLine:
    rule: str
    month: str
    payer: str
    count: int
    volume: int
    amount: int


@dataclass(frozen=True)
class Priced:
    fees: dict[str, int]
    """Unit key -> the sum of the fees charged on it."""
    lines: list[FeeLine]


def price(units: Sequence[Unit], rules: Sequence[FeeRule], prior: Mapping[tuple[str, str], int]) -> Priced:
    """Every rule's fee on each sale it selects, in time order; `prior` is (rule, month) -> the
    volume of that rule's sales in approved settlements of the month so far."""
    running: dict[tuple[str, str], int] = dict(prior)
    per_unit: dict[str, int] = {}
    sums: dict[tuple[str, str], list[int]] = {}
    for unit in sorted(units, key=lambda u: (u.time_us, u.key)):
        if unit.category != SALE or unit.amount <= 0:
            continue
        for rule in rules:
            if not fee_rules.selects(rule, unit.service, unit.provider, unit.product, unit.client):
                continue
            where = (rule.name, unit.month)
            before = running.get(where, 0)
            fee = fee_rules.fee_of(rule, unit.amount, before)
            running[where] = before + unit.amount
            per_unit[unit.key] = per_unit.get(unit.key, 0) + fee
            line = sums.setdefault(where, [0, 0, 0])
            line[0] += 1
            line[1] += unit.amount
            line[2] += fee
    payers = {rule.name: rule.payer for rule in rules}
    lines = [FeeLine(rule, month, payers[rule], *sums[(rule, month)]) for rule, month in sorted(sums)]
    return Priced(per_unit, lines)


@dataclass(frozen=True)
class Totals:
    approved: int
    reversed: int
    refunded: int
    principal: int
    principal_payer: str
    fees_to_us: int
    fees_to_them: int
    net_to_counterparty: int
    """> 0: we pay the counterparty; < 0: the counterparty pays us."""


def totals(units: Iterable[Unit], lines: Iterable[FeeLine], principal_payer: str) -> Totals:
    amounts = {SALE: 0, REVERSED: 0, REFUND: 0}
    for unit in units:
        amounts[unit.category] += unit.amount
    approved = amounts[SALE] + amounts[REVERSED]
    principal = approved - amounts[REVERSED] - amounts[REFUND]
    to_us = sum(line.amount for line in lines if line.payer == "counterparty")
    to_them = sum(line.amount for line in lines if line.payer == "us")
    owed = principal if principal_payer == "us" else -principal
    return Totals(
        approved, amounts[REVERSED], amounts[REFUND], principal, principal_payer, to_us, to_them, owed - to_us + to_them
    )


def direction(net_to_counterparty: int, counterparty: str) -> str:
    if net_to_counterparty > 0:
        return f"xhuma pays {counterparty}"
    if net_to_counterparty < 0:
        return f"{counterparty} pays xhuma"
    return "nothing to pay"


def favours_theirs(resolution: str | None, counterparty: str) -> bool:
    """Whether a resolution accepted their amount (an approval's, or an automatic one)."""
    if resolution is None:
        return False
    return resolution.endswith("in favour of theirs") or resolution.endswith(f"in favour of {counterparty}")


def gather(conn: Connection, process: Process, start: date, end: date) -> list[Unit]:
    """The process's units of the period that no approved settlement holds yet."""
    r, t, v, f = finance_results.c, transactions.c, vouchers.c, finance_records.c
    first, last = start.isoformat(), end.isoformat()
    in_period = select(r.group_id).where(
        r.process == process.name,
        r.side == "ours",
        r.record_day >= first,
        r.record_day <= last,
        r.group_id.is_not(None),
    )
    their_key = f.file_id + literal(":") + cast(f.line, String)
    joined = (
        finance_results.outerjoin(transactions, and_(r.side == "ours", t.id == r.record_id))
        .outerjoin(vouchers, v.id == func.coalesce(t.parent_id, t.id))
        .outerjoin(finance_records, and_(r.side == "theirs", their_key == r.record_id))
    )
    rows = conn.execute(
        select(
            r.side,
            r.record_id,
            r.group_id,
            r.resolution,
            r.amount,
            r.time_us,
            r.reference,
            r.record_day,
            t.kind,
            t.state,
            t.currency,
            t.provider,
            t.client_id,
            v.product_code,
            f.type.label("their_type"),
            f.currency.label("their_currency"),
        )
        .select_from(joined)
        .where(
            r.process == process.name,
            r.status == "matched",
            r.settlement_id.is_(None),
            or_(
                r.group_id.in_(in_period),
                and_(r.group_id.is_(None), r.record_day >= first, r.record_day <= last),
            ),
        )
    ).all()
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.group_id or f"{row.side}:{row.record_id}"].append(row)
    return [_unit(process, key, members) for key, members in grouped.items()]


def _unit(process: Process, key: str, members: list[Any]) -> Unit:
    ours = sorted((m for m in members if m.side == "ours"), key=lambda m: (m.time_us, m.record_id))
    theirs = sorted((m for m in members if m.side == "theirs"), key=lambda m: (m.time_us, m.record_id))
    first = (ours or theirs)[0]
    use_theirs = bool(theirs) and (not ours or favours_theirs(first.resolution, process.counterparty))
    amount = sum(m.amount for m in (theirs if use_theirs else ours))
    if ours:
        category = REFUND if first.kind == "refund" else REVERSED if first.state == "reversed" else SALE
    else:
        kind = (first.their_type or "").lower()
        category = REFUND if kind in THEIR_REFUNDS else REVERSED if kind in THEIR_REVERSALS else SALE
    return Unit(
        key=f"{process.name}/{key}",
        process=process.name,
        service=process.service,
        category=category,
        month=first.record_day[:7],
        time_us=first.time_us,
        reference=first.reference,
        amount=amount,
        currency=first.currency or first.their_currency,
        provider=first.provider or process.counterparty,
        product=first.product_code,
        client=first.client_id,
        records=tuple((m.side, m.record_id) for m in ours + theirs),
    )


def _prior_volume(conn: Connection, counterparty: str, months: set[str]) -> dict[tuple[str, str], int]:
    fe, s = finance_settlement_fees.c, finance_settlements.c
    rows = conn.execute(
        select(fe.rule, fe.month, func.sum(fe.volume))
        .join(finance_settlements, s.id == fe.settlement_id)
        .where(s.counterparty == counterparty, s.status == APPROVED, fe.month.in_(sorted(months)))
        .group_by(fe.rule, fe.month)
    )
    return {(rule, month): int(volume or 0) for rule, month, volume in rows}


def draft(
    settlement_id: str, approval_id: str, counterparty: str, start: date, end: date, finance: Finance, maker: str
) -> Callable[[Connection], dict[str, Any]]:
    """Draft the counterparty's settlement of the period (DRAFT, awaiting `approval_id`)."""

    def op(conn: Connection) -> dict[str, Any]:
        s = finance_settlements.c
        mine = conn.execute(select(finance_settlements).where(s.id == settlement_id)).first()
        if mine is not None:
            return dict(mine._mapping)
        if start > end:
            raise SettlementRefused(f"to: {end} is before from ({start})", 400, "to")
        processes = [p for p in finance.processes if p.counterparty == counterparty]
        if not processes:
            known = ", ".join(sorted({p.counterparty for p in finance.processes})) or "none"
            raise SettlementRefused(
                f"counterparty: no process reconciles {counterparty!r}; known: {known}", 400, "counterparty"
            )
        waiting = conn.execute(
            select(s.id, s.from_day, s.to_day, s.approval_id).where(s.counterparty == counterparty, s.status == DRAFT)
        ).first()
        if waiting is not None:
            raise SettlementRefused(
                f"settlement {waiting.id} of {counterparty} ({waiting.from_day} to {waiting.to_day}) awaits "
                f"approval {waiting.approval_id}: approve or reject it first"
            )
        units = [u for p in processes for u in gather(conn, p, start, end)]
        if not units:
            done = conn.execute(
                select(s.id).where(
                    s.counterparty == counterparty,
                    s.status == APPROVED,
                    s.from_day <= end.isoformat(),
                    s.to_day >= start.isoformat(),
                )
            ).scalars()
            settled = ", ".join(done)
            raise SettlementRefused(
                f"nothing to settle for {counterparty} from {start} to {end}: no matched record that is not "
                f"settled already" + (f" (settled in {settled})" if settled else "")
            )
        currencies = sorted({u.currency for u in units if u.currency})
        if len(currencies) > 1:
            raise SettlementRefused(f"{counterparty} has records in {', '.join(currencies)}: one currency at a time")
        rules = [rule for rule in finance.fees if rule.counterparty == counterparty]
        priced = price(units, rules, _prior_volume(conn, counterparty, {u.month for u in units}))
        accounts = finance.accounts.get(counterparty)
        sums = totals(units, priced.lines, accounts.principal_payer if accounts else "us")
        row: dict[str, Any] = {
            "id": settlement_id,
            "counterparty": counterparty,
            "from_day": start.isoformat(),
            "to_day": end.isoformat(),
            "status": DRAFT,
            "currency": currencies[0] if currencies else None,
            "units": len(units),
            **{name: getattr(sums, name) for name in Totals.__dataclass_fields__},
            "created_by": maker,
            "created_us": now_us(),
            "approval_id": approval_id,
        }
        conn.execute(insert(finance_settlements).values(row))
        unit_rows = [
            {
                "settlement_id": settlement_id,
                "unit": u.key,
                "process": u.process,
                "category": u.category,
                "month": u.month,
                "time_us": u.time_us,
                "reference": u.reference,
                "amount": u.amount,
                "fee": priced.fees.get(u.key, 0),
            }
            for u in units
        ]
        record_rows = [
            {"settlement_id": settlement_id, "process": u.process, "side": side, "record_id": record, "unit": u.key}
            for u in units
            for side, record in u.records
        ]
        fee_rows = [{"settlement_id": settlement_id, **asdict(line)} for line in priced.lines]
        bulk_insert(conn, finance_settlement_units, unit_rows)
        bulk_insert(conn, finance_settlement_records, record_rows)
        bulk_insert(conn, finance_settlement_fees, fee_rows)
        return row

    return op


def approve(conn: Connection, settlement_id: str) -> dict[str, Any]:
    """Freeze a DRAFT (in the approving transaction): its records become settled, all or none."""
    row = _row(conn, settlement_id)
    if row["status"] != DRAFT:
        raise SettlementRefused(f"settlement {settlement_id} is {row['status']}, not DRAFT")
    r, sr = finance_results.c, finance_settlement_records.c
    listed = conn.execute(select(sr.process, sr.side, sr.record_id).where(sr.settlement_id == settlement_id)).all()
    marked = conn.execute(
        update(finance_results)
        .where(
            r.settlement_id.is_(None),
            r.status == "matched",
            exists().where(
                sr.settlement_id == settlement_id,
                sr.process == r.process,
                sr.side == r.side,
                sr.record_id == r.record_id,
            ),
        )
        .values(settlement_id=settlement_id)
    ).rowcount
    if marked != len(listed):
        raise SettlementRefused(
            f"settlement {settlement_id} is stale: {len(listed) - marked} of its {len(listed)} records are no "
            "longer matched (a rollback or a run since) or are settled elsewhere: reject it and settle again"
        )
    conn.execute(
        update(finance_settlements)
        .where(finance_settlements.c.id == settlement_id)
        .values(status=APPROVED, decided_us=now_us())
    )
    finalized = finalize(conn, {(p, record.split(":")[0]) for p, side, record in listed if side == "theirs"})
    return {"settlement": settlement_id, "status": APPROVED, "records": len(listed), "finalized": finalized}


def reject(conn: Connection, settlement_id: str) -> dict[str, Any]:
    row = _row(conn, settlement_id)
    if row["status"] != DRAFT:
        raise SettlementRefused(f"settlement {settlement_id} is {row['status']}, not DRAFT")
    conn.execute(
        update(finance_settlements)
        .where(finance_settlements.c.id == settlement_id)
        .values(status=REJECTED, decided_us=now_us())
    )
    return {"settlement": settlement_id, "status": REJECTED}


def finalize(conn: Connection, files: Iterable[tuple[str, str]]) -> list[str]:
    """Mark FINALIZED each loaded (process, file) all of whose records are settled or written off."""
    r = finance_results.c
    done = []
    for process, file_id in sorted(set(files)):
        row = conn.execute(
            select(finance_files.c.records, finance_files.c.status).where(finance_files.c.id == file_id)
        ).first()
        if row is None or row.status != LOADED:
            continue
        closed = conn.execute(
            select(func.count()).where(
                r.process == process,
                r.side == "theirs",
                r.record_id.like(f"{file_id}:%"),
                or_(r.settlement_id.is_not(None), r.status == "written_off"),
            )
        ).scalar_one()
        if closed == row.records:
            conn.execute(
                update(finance_files).where(finance_files.c.id == file_id).values(status=FINALIZED, updated_us=now_us())
            )
            done.append(file_id)
    return done


def _row(conn: Connection, settlement_id: str) -> dict[str, Any]:
    row = conn.execute(select(finance_settlements).where(finance_settlements.c.id == settlement_id)).first()
    if row is None:
        raise SettlementRefused(f"no settlement {settlement_id}", 404, "settlement_id")
    return dict(row._mapping)


def settlement(settlement_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    """A settlement with its fee lines and units, or None."""

    def op(conn: Connection) -> dict[str, Any] | None:
        try:
            row = _row(conn, settlement_id)
        except SettlementRefused:
            return None
        fe, u = finance_settlement_fees.c, finance_settlement_units.c
        row["direction"] = direction(row["net_to_counterparty"], row["counterparty"])
        row["fees"] = [
            dict(f._mapping)
            for f in conn.execute(
                select(fe.rule, fe.month, fe.payer, fe.count, fe.volume, fe.amount)
                .where(fe.settlement_id == settlement_id)
                .order_by(fe.rule, fe.month)
            )
        ]
        row["unit_rows"] = [
            dict(x._mapping)
            for x in conn.execute(
                select(u.unit, u.process, u.category, u.month, u.time_us, u.reference, u.amount, u.fee)
                .where(u.settlement_id == settlement_id)
                .order_by(u.time_us, u.unit)
            )
        ]
        return row

    return op


def settlements(counterparty: str | None = None) -> Callable[[Connection], list[dict[str, Any]]]:
    def op(conn: Connection) -> list[dict[str, Any]]:
        s = finance_settlements.c
        query = select(finance_settlements).order_by(s.created_us)
        if counterparty is not None:
            query = query.where(s.counterparty == counterparty)
        rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["direction"] = direction(row["net_to_counterparty"], row["counterparty"])
        return rows

    return op
