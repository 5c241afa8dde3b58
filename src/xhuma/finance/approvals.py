"""Maker-checker: a change to reconciliation or settlement proposed by one person and taking
effect only when a different person, holding the approver role, approves it.

What may be proposed (`Proposal.kind`):

- `accept`: an unmatched (or expired) record accepted as it is: it becomes `matched` (and, on
  our side or as their record alone, settleable);
- `write_off`: an unmatched (or expired) record written off to a named party (`written_off`);
- `resolve`: a partially matched group accepted in favour of `ours` or `theirs` (`matched`; a
  settlement then uses that side's amount);
- `rollback`: a loaded file rolled back: what it matched is un-matched (our records in its
  matches become `unmatched` again), its own results are removed and it becomes ROLLBACK;
  refused while any of its records is settled or in a draft settlement;
- `settlement`: a settlement run drafted for a counterparty and period (`finance.settlement`);
  approved, it is frozen and its records are settled.

The target is checked when proposed and again when approved (it may have changed since); the
approver must be another user than the maker, and an enabled credential with role `approver`
(`xhuma clients add --role approver`): on the admin API both are the authenticated credential's
username, on the command line `--as` (by default the OS account), which is that account's word.
Proposing, approving and rejecting are each written to the audit log in the same transaction as
the change, with the actor and the target's state before and after. Every function returns an
operation for `Database.run` / `run_sync`, run in one transaction: a refusal (`ApprovalRefused`)
changes nothing, and a rerun after a rollback does the same thing once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from xhuma.finance import settlement
from xhuma.finance.processes import Finance
from xhuma.finance.store import LOADED, ROLLBACK
from xhuma.security.audit import Actor, record
from xhuma.storage.db import now_us
from xhuma.storage.tables import (
    api_clients,
    finance_approvals,
    finance_files,
    finance_results,
    finance_settlement_records,
    finance_settlements,
)

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
APPROVER_ROLE = "approver"
KINDS = ("accept", "write_off", "resolve", "rollback", "settlement")
Text = Annotated[str, Meta(min_length=1, max_length=1000)]
Short = Annotated[str, Meta(min_length=1, max_length=80)]


class ApprovalRefused(ValueError):
    """Why a proposal, approval or rejection was refused; nothing was changed. `status` is the
    HTTP status the admin API answers it with (404 unknown, 403 not this user's to decide, 400 a
    bad or missing field, which `field` names; 409 the target's state does not allow it)."""

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class Proposal(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What the maker proposes (the admin API's body; the CLI builds the same)."""

    kind: Literal["accept", "write_off", "resolve", "rollback", "settlement"]
    note: Text
    process: Short | None = None
    side: Literal["ours", "theirs"] | None = None
    record: Annotated[str, Meta(min_length=1, max_length=48)] | None = None
    party: Short | None = None
    """write_off: who bears it."""
    in_favour_of: Literal["ours", "theirs"] | None = None
    file: Annotated[str, Meta(min_length=1, max_length=36)] | None = None
    counterparty: Short | None = None
    start: str | None = msgspec.field(default=None, name="from")
    end: str | None = msgspec.field(default=None, name="to")


NEEDS = {
    "accept": ("process", "side", "record"),
    "write_off": ("process", "side", "record", "party"),
    "resolve": ("process", "side", "record", "in_favour_of"),
    "rollback": ("file",),
    "settlement": ("counterparty", "from", "to"),
}


def _needs(proposal: Proposal) -> None:
    for name in NEEDS[proposal.kind]:
        if getattr(proposal, {"from": "start", "to": "end"}.get(name, name)) is None:
            raise ApprovalRefused(f"{name}: required to propose {proposal.kind}", 400, name)


def _day(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise ApprovalRefused(f"{name}: {value!r} is not a date YYYY-MM-DD", 400, name) from None


def _result(conn: Connection, target: str) -> dict[str, Any]:
    process, side, record_id = target.split("/", 2)
    r = finance_results.c
    row = conn.execute(
        select(finance_results).where(r.process == process, r.side == side, r.record_id == record_id)
    ).first()
    if row is None:
        raise ApprovalRefused(
            f"no result for {side} record {record_id} of process {process} (is its day run?)", 404, "record"
        )
    found = dict(row._mapping)
    if found["settlement_id"] is not None:
        raise ApprovalRefused(f"{side} record {record_id} is settled (settlement {found['settlement_id']})")
    if found["approval_id"] is not None:
        raise ApprovalRefused(f"{side} record {record_id} was resolved already (approval {found['approval_id']})")
    return found


def _check(conn: Connection, kind: str, target: str) -> None:
    """That the target may take the change now (ApprovalRefused if not)."""
    if kind in ("accept", "write_off", "resolve"):
        found = _result(conn, target)
        wanted = ("partially_matched",) if kind == "resolve" else ("unmatched", "expired")
        if found["status"] not in wanted:
            raise ApprovalRefused(
                f"{found['side']} record {found['record_id']} is {found['status']}: {kind} takes a record "
                f"{' or '.join(wanted)}"
            )
    elif kind == "rollback":
        _rollback_check(conn, target)
    else:
        row = conn.execute(select(finance_settlements.c.status).where(finance_settlements.c.id == target)).first()
        if row is None or row.status != settlement.DRAFT:
            raise ApprovalRefused(f"settlement {target} is {row.status if row else 'unknown'}, not DRAFT")


def _of_file(file_id: str, process: str) -> Any:
    r = finance_results.c
    return and_(r.process == process, r.side == "theirs", r.record_id.startswith(f"{file_id}:", autoescape=True))


def _rollback_check(conn: Connection, file_id: str) -> str:
    """The file's process, if the file may be rolled back."""
    row = conn.execute(select(finance_files.c.process, finance_files.c.status).where(finance_files.c.id == file_id))
    found = row.first()
    if found is None:
        raise ApprovalRefused(f"no file {file_id}", 404, "file")
    if found.status != LOADED:
        raise ApprovalRefused(f"file {file_id} is {found.status}: only a LOADED file can be rolled back")
    r = finance_results.c
    settled = conn.execute(
        select(func.count(), func.min(r.settlement_id)).where(
            _of_file(file_id, found.process), r.settlement_id.is_not(None)
        )
    ).one()
    if settled[0]:
        raise ApprovalRefused(
            f"file {file_id} cannot be rolled back: {settled[0]} of its records are settled (settlement {settled[1]})"
        )
    sr, s = finance_settlement_records.c, finance_settlements.c
    drafted = conn.execute(
        select(s.id)
        .join(finance_settlement_records, sr.settlement_id == s.id)
        .where(
            s.status == settlement.DRAFT,
            sr.process == found.process,
            sr.side == "theirs",
            sr.record_id.startswith(f"{file_id}:", autoescape=True),
        )
        .limit(1)
    ).scalar()
    if drafted is not None:
        raise ApprovalRefused(
            f"file {file_id} cannot be rolled back: its records are in draft settlement {drafted}: reject it first"
        )
    return str(found.process)


def _state(conn: Connection, kind: str, target: str) -> Any:
    """The target as the audit log shows it before and after."""
    r = finance_results.c
    if kind in ("accept", "write_off", "resolve"):
        process, side, record_id = target.split("/", 2)
        row = conn.execute(
            select(r.group_id).where(r.process == process, r.side == side, r.record_id == record_id)
        ).first()
        query = select(r.side, r.record_id, r.status, r.resolution).where(r.process == process)
        if kind == "resolve" and row is not None and row.group_id is not None:
            query = query.where(r.group_id == row.group_id)
        else:
            query = query.where(r.side == side, r.record_id == record_id)
        return [dict(x._mapping) for x in conn.execute(query.order_by(r.side, r.record_id))]
    if kind == "rollback":
        found = conn.execute(
            select(finance_files.c.process, finance_files.c.status).where(finance_files.c.id == target)
        ).first()
        if found is None:
            return None
        results = conn.execute(select(func.count()).where(_of_file(target, found.process))).scalar_one()
        return {"file": found.status, "their_results": results}
    row = conn.execute(
        select(finance_settlements.c.status, finance_settlements.c.net_to_counterparty).where(
            finance_settlements.c.id == target
        )
    ).first()
    settled = conn.execute(select(func.count()).where(r.settlement_id == target)).scalar_one()
    return None if row is None else {"status": row.status, "net": row.net_to_counterparty, "settled": settled}


def _row(conn: Connection, approval_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(finance_approvals).where(finance_approvals.c.id == approval_id)).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["payload"] = json.loads(found["payload"])
    found["outcome"] = json.loads(found["outcome"]) if found["outcome"] else None
    return found


def propose(
    approval_id: str, actor: Actor, proposal: Proposal, finance: Finance, settlement_id: str | None = None
) -> Callable[[Connection], dict[str, Any]]:
    """Store the proposal (pending) once its target is checked; a settlement is drafted first
    (under `settlement_id`) and the proposal is to approve it."""
    _needs(proposal)

    def op(conn: Connection) -> dict[str, Any]:
        mine = _row(conn, approval_id)
        if mine is not None:
            return mine
        payload: dict[str, Any] = {}
        if proposal.kind == "settlement":
            assert proposal.counterparty is not None and settlement_id is not None
            start, end = _day(proposal.start, "from"), _day(proposal.end, "to")
            try:
                drafted = settlement.draft(
                    settlement_id, approval_id, proposal.counterparty, start, end, finance, actor.name
                )(conn)
            except settlement.SettlementRefused as exc:
                raise ApprovalRefused(str(exc), exc.status, exc.field) from None
            target = settlement_id
            names = ("counterparty", "from_day", "to_day", "units", "principal", "fees_to_us", "fees_to_them")
            payload = {k: drafted[k] for k in (*names, "net_to_counterparty")}
        elif proposal.kind == "rollback":
            assert proposal.file is not None
            target = proposal.file
        else:
            target = f"{proposal.process}/{proposal.side}/{proposal.record}"
            payload = {k: v for k, v in (("party", proposal.party), ("in_favour_of", proposal.in_favour_of)) if v}
        _check(conn, proposal.kind, target)
        a = finance_approvals.c
        waiting = conn.execute(
            select(a.id, a.maker).where(a.kind == proposal.kind, a.target == target, a.status == PENDING)
        ).first()
        if waiting is not None:
            raise ApprovalRefused(
                f"{proposal.kind} of {target} is proposed already: approval {waiting.id} by {waiting.maker}"
            )
        row = {
            "id": approval_id,
            "kind": proposal.kind,
            "target": target,
            "payload": json.dumps(payload, sort_keys=True),
            "status": PENDING,
            "maker": actor.name,
            "maker_note": proposal.note,
            "created_us": now_us(),
        }
        conn.execute(insert(finance_approvals).values(row))
        shown = {**row, "payload": payload}
        record(conn, actor, "finance.propose", f"{proposal.kind} {target}", _state(conn, proposal.kind, target), shown)
        return shown

    return op


def _checker(conn: Connection, approval_id: str, actor: Actor, note: str) -> dict[str, Any]:
    """The pending approval, if `actor` may decide it."""
    found = _row(conn, approval_id)
    if found is None:
        raise ApprovalRefused(f"no approval {approval_id}", 404, "approval_id")
    if found["status"] != PENDING:
        raise ApprovalRefused(f"approval {approval_id} is {found['status']} already (by {found['checker']})")
    if not note.strip():
        raise ApprovalRefused("note: required: say why", 400, "note")
    if actor.name == found["maker"]:
        raise ApprovalRefused(
            f"{actor.name} proposed approval {approval_id} and cannot decide it too: a different approver must", 403
        )
    c = api_clients.c
    role = conn.execute(select(c.role).where(c.username == actor.name, c.enabled.is_(True))).scalar()
    if role != APPROVER_ROLE:
        raise ApprovalRefused(
            f"{actor.name} may not decide approvals: only an enabled credential with the {APPROVER_ROLE} role may",
            403,
        )
    return found


def approve(approval_id: str, actor: Actor, note: str) -> Callable[[Connection], dict[str, Any]]:
    """Apply the proposal (checked again first) and mark it approved, or refuse and change nothing."""

    def op(conn: Connection) -> dict[str, Any]:
        found = _checker(conn, approval_id, actor, note)
        kind, target = found["kind"], found["target"]
        _check(conn, kind, target)
        before = _state(conn, kind, target)
        try:
            outcome = _apply(conn, found)
        except settlement.SettlementRefused as exc:
            raise ApprovalRefused(str(exc), exc.status, exc.field) from None
        return _decide(conn, actor, found, APPROVED, note, outcome, before)

    return op


def reject(approval_id: str, actor: Actor, note: str) -> Callable[[Connection], dict[str, Any]]:
    """Mark it rejected (a rejected settlement too); the target is left as it is."""

    def op(conn: Connection) -> dict[str, Any]:
        found = _checker(conn, approval_id, actor, note)
        before = _state(conn, found["kind"], found["target"])
        outcome: dict[str, Any] = {}
        if found["kind"] == "settlement":
            outcome = settlement.reject(conn, found["target"])
        return _decide(conn, actor, found, REJECTED, note, outcome, before)

    return op


def _decide(
    conn: Connection, actor: Actor, found: dict[str, Any], status: str, note: str, outcome: Any, before: Any
) -> dict[str, Any]:
    values = {"status": status, "checker": actor.name, "checker_note": note, "decided_us": now_us()}
    conn.execute(
        update(finance_approvals)
        .where(finance_approvals.c.id == found["id"])
        .values(outcome=json.dumps(outcome, sort_keys=True), **values)
    )
    after = _state(conn, found["kind"], found["target"])
    verb = "approve" if status == APPROVED else "reject"
    record(conn, actor, f"finance.{verb}", f"{found['kind']} {found['target']}", before, after)
    return {**found, **values, "outcome": outcome}


def _apply(conn: Connection, found: dict[str, Any]) -> Any:
    approval_id, kind, target, payload = found["id"], found["kind"], found["target"], found["payload"]
    if kind == "settlement":
        return settlement.approve(conn, target)
    if kind == "rollback":
        return _rollback(conn, target)
    process, side, record_id = target.split("/", 2)
    r = finance_results.c
    where = and_(r.process == process, r.side == side, r.record_id == record_id)
    if kind == "resolve":
        group = conn.execute(select(r.group_id).where(where)).scalar()
        where = and_(r.process == process, r.group_id == group) if group is not None else where
        values = {"status": "matched", "resolution": f"approval {approval_id}: in favour of {payload['in_favour_of']}"}
    elif kind == "accept":
        values = {"status": "matched", "resolution": f"approval {approval_id}: accepted as is"}
    else:
        values = {"status": "written_off", "resolution": f"approval {approval_id}: written off to {payload['party']}"}
    changed = conn.execute(update(finance_results).where(where).values(approval_id=approval_id, **values)).rowcount
    finalized = settlement.finalize(conn, [(process, record_id.split(":")[0])] if side == "theirs" else [])
    return {"records": changed, **values, "finalized": finalized}


def _rollback(conn: Connection, file_id: str) -> dict[str, Any]:
    process = _rollback_check(conn, file_id)
    r = finance_results.c
    mine = _of_file(file_id, process)
    groups = [g for g in conn.execute(select(r.group_id).distinct().where(mine, r.group_id.is_not(None))).scalars()]
    unmatched = 0
    if groups:
        unmatched = conn.execute(
            update(finance_results)
            .where(r.process == process, r.group_id.in_(groups), ~mine)
            .values(
                status="unmatched",
                rule=None,
                group_id=None,
                counterparts=None,
                differences=None,
                resolution=None,
                approval_id=None,
            )
        ).rowcount
    removed = conn.execute(delete(finance_results).where(mine)).rowcount
    conn.execute(
        update(finance_files).where(finance_files.c.id == file_id).values(status=ROLLBACK, updated_us=now_us())
    )
    return {"file": file_id, "status": ROLLBACK, "removed": removed, "unmatched_again": unmatched}


def approvals(status: str | None = PENDING) -> Callable[[Connection], list[dict[str, Any]]]:
    """Proposals, oldest first (None: every status)."""

    def op(conn: Connection) -> list[dict[str, Any]]:
        a = finance_approvals.c
        query = select(a.id).order_by(a.created_us, a.id)
        if status is not None:
            query = query.where(a.status == status)
        return [row for row in (_row(conn, i) for i in conn.execute(query).scalars()) if row is not None]

    return op


def approval(approval_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    return lambda conn: _row(conn, approval_id)
