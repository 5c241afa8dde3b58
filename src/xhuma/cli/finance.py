"""`xhuma finance`: maker-checker proposals and their approval, settlement runs and their GL
posting files (see `xhuma.finance.approvals`, `.settlement`, `.posting`).

Who acts is `--as USER` (by default the OS account): the command line takes the account's word
for it, as it does for every change it records in the audit log; the admin API instead acts as
the authenticated credential. Approving or rejecting needs USER to be an enabled credential with
the `approver` role, other than the proposal's maker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, money, settings, show_rows, when

app = typer.Typer(
    help="Finance: proposals and approvals (maker-checker), settlement, GL posting.", no_args_is_help=True
)
propose_app = typer.Typer(help="Propose a change; it takes effect once another user approves it.", no_args_is_help=True)
app.add_typer(propose_app, name="propose")

AsOption = Annotated[
    str | None, typer.Option("--as", help="Who acts (default: the OS account; the command line takes its word).")
]
NoteOption = Annotated[str, typer.Option("--note", help="Why (kept with the proposal and in the audit log).")]
ProcessOption = Annotated[str, typer.Option("--process", help="The process's name in [[finance.processes]].")]
SideOption = Annotated[str, typer.Option("--side", help="ours (a journal transaction id) or theirs (FILE:LINE).")]
RecordOption = Annotated[str, typer.Option("--record", help="The record's id, as `xhuma recon list` shows it.")]


def _propose(config: Path | None, actor_name: str | None, fields: dict[str, Any]) -> None:
    import msgspec

    from xhuma.finance import approvals
    from xhuma.security.audit import cli_actor

    try:
        proposal = msgspec.convert(fields, approvals.Proposal)
    except msgspec.ValidationError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finance = settings(config).finance
    settlement_id = str(uuid.uuid4()) if proposal.kind == "settlement" else None
    db = database(config, migrate_schema=True)
    try:
        op = approvals.propose(str(uuid.uuid4()), cli_actor(actor_name), proposal, finance, settlement_id)
        row = db.run_sync(op)
    except approvals.ApprovalRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"approval {row['id']}: {row['kind']} of {row['target']} proposed by {row['maker']}, pending")
    if settlement_id is not None:
        _show_settlement(db.run_sync(_settlement_op(settlement_id)))


def _settlement_op(settlement_id: str) -> Any:
    from xhuma.finance import settlement

    return settlement.settlement(settlement_id)


@propose_app.command("accept")
def propose_accept(
    process: ProcessOption, side: SideOption, record: RecordOption, note: NoteOption,
    actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Accept an unmatched (or expired) record as it is."""
    _propose(config, actor, {"kind": "accept", "process": process, "side": side, "record": record, "note": note})


@propose_app.command("write-off")
def propose_write_off(
    process: ProcessOption, side: SideOption, record: RecordOption, note: NoteOption,
    party: Annotated[str, typer.Option("--party", help="Who bears it.")],
    actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Write an unmatched (or expired) record off to a named party."""
    fields = {"kind": "write_off", "process": process, "side": side, "record": record, "party": party, "note": note}
    _propose(config, actor, fields)


@propose_app.command("resolve")
def propose_resolve(
    process: ProcessOption, side: SideOption, record: RecordOption, note: NoteOption,
    favour: Annotated[str, typer.Option("--in-favour-of", help="ours or theirs: whose amount stands.")],
    actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Accept a partially matched record (and its match) in favour of ours or theirs."""
    fields = {"kind": "resolve", "process": process, "side": side, "record": record, "in_favour_of": favour}
    _propose(config, actor, {**fields, "note": note})


@propose_app.command("rollback")
def propose_rollback(
    file: Annotated[str, typer.Option("--file", help="The file's id, as `xhuma recon files` shows it.")],
    note: NoteOption, actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Roll a loaded file back: what it matched is un-matched (refused once any of it is settled)."""
    _propose(config, actor, {"kind": "rollback", "file": file, "note": note})


@app.command("settle")
def finance_settle(
    counterparty: Annotated[str, typer.Option("--counterparty", help="A process's counterparty.")],
    start: Annotated[str, typer.Option("--from", help="The first day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="The last day, YYYY-MM-DD (the same for one day).")],
    note: NoteOption = "settlement",
    actor: AsOption = None,
    config: ConfigOption = None,
) -> None:
    """Draft the counterparty's settlement of the period and propose its approval."""
    fields = {"kind": "settlement", "counterparty": counterparty, "from": start, "to": end, "note": note}
    _propose(config, actor, fields)


@app.command("approvals")
def finance_approvals(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Proposals, oldest first."""
    from xhuma.finance import approvals

    if status not in (approvals.PENDING, approvals.APPROVED, approvals.REJECTED, "all"):
        raise typer.BadParameter("one of pending, approved, rejected, all", param_hint="--status")
    rows = database(config).run_sync(approvals.approvals(None if status == "all" else status))
    show_rows(
        rows,
        [
            ("id", "id"),
            ("kind", "kind"),
            ("target", "target"),
            ("status", "status"),
            ("maker", "maker"),
            ("note", "maker_note"),
            ("proposed", lambda r: when(r["created_us"])),
            ("checker", "checker"),
            ("checker's note", "checker_note"),
        ],
        as_json=as_json,
    )


def _decide(verb: str, approval_id: str, note: str, actor_name: str | None, config: Path | None) -> None:
    from xhuma.finance import approvals
    from xhuma.security.audit import cli_actor

    decide = approvals.approve if verb == "approve" else approvals.reject
    try:
        row = database(config, migrate_schema=True).run_sync(decide(approval_id, cli_actor(actor_name), note))
    except approvals.ApprovalRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"approval {approval_id}: {row['kind']} of {row['target']} {row['status']} by {row['checker']}")


@app.command("approve")
def finance_approve(
    approval_id: Annotated[str, typer.Argument(help="The approval's id.")],
    note: NoteOption, actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Approve another user's proposal: it takes effect now (checked again first)."""
    _decide("approve", approval_id, note, actor, config)


@app.command("reject")
def finance_reject(
    approval_id: Annotated[str, typer.Argument(help="The approval's id.")],
    note: NoteOption, actor: AsOption = None, config: ConfigOption = None,
) -> None:  # fmt: skip
    """Reject another user's proposal (a settlement so rejected may be drafted again)."""
    _decide("reject", approval_id, note, actor, config)


def _show_settlement(row: dict[str, Any] | None) -> None:
    if row is None:
        return
    console.print(
        f"settlement {row['id']} of {row['counterparty']}, {row['from_day']} to {row['to_day']}: {row['status']}; "
        f"{row['units']} matches; approved {money(row['approved'])}, reversed {money(row['reversed'])}, "
        f"refunded {money(row['refunded'])}, principal {money(row['principal'])}; fees to us "
        f"{money(row['fees_to_us'])}, to them {money(row['fees_to_them'])}; net "
        f"{money(abs(row['net_to_counterparty']))}: {row['direction']}"
    )


@app.command("settlements")
def finance_settlements(
    counterparty: Annotated[str | None, typer.Option("--counterparty")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Settlement runs, oldest first."""
    from xhuma.finance import settlement

    show_rows(
        database(config).run_sync(settlement.settlements(counterparty)),
        [
            ("id", "id"),
            ("counterparty", "counterparty"),
            ("from", "from_day"),
            ("to", "to_day"),
            ("status", "status"),
            ("matches", "units"),
            ("principal", lambda r: money(r["principal"])),
            ("fees to us", lambda r: money(r["fees_to_us"])),
            ("fees to them", lambda r: money(r["fees_to_them"])),
            ("net", lambda r: money(abs(r["net_to_counterparty"]))),
            ("direction", "direction"),
        ],
        as_json=as_json,
    )


@app.command("settlement")
def finance_settlement(
    settlement_id: Annotated[str, typer.Argument(help="The settlement's id.")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """One settlement run, with its fee lines."""
    from xhuma.cli.common import json_line

    row = database(config).run_sync(_settlement_op(settlement_id))
    if row is None:
        typer.echo(f"no settlement {settlement_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json_line(row))
        return
    _show_settlement(row)
    show_rows(
        row["fees"],
        [
            ("fee", "rule"),
            ("month", "month"),
            ("paid by", "payer"),
            ("matches", "count"),
            ("volume", lambda r: money(r["volume"])),
            ("amount", lambda r: money(r["amount"])),
        ],
        as_json=False,
    )


@app.command("post")
def finance_post(
    settlement_id: Annotated[str, typer.Argument(help="An approved settlement's id.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the journal CSV.")],
    config: ConfigOption = None,
) -> None:
    """Write the GL posting file of an approved settlement: a balanced journal CSV."""
    from xhuma.finance import posting, settlement

    finance = settings(config).finance
    row = database(config).run_sync(_settlement_op(settlement_id))
    if row is None:
        typer.echo(f"no settlement {settlement_id}", err=True)
        raise typer.Exit(1)
    if row["status"] != settlement.APPROVED:
        typer.echo(f"settlement {settlement_id} is {row['status']}: only an APPROVED one is posted", err=True)
        raise typer.Exit(1)
    accounts = finance.accounts.get(row["counterparty"])
    if accounts is None:
        typer.echo(
            f"finance.accounts.{row['counterparty']}: not configured: the posting needs its principal, fees "
            "and settlement accounts",
            err=True,
        )
        raise typer.Exit(2)
    lines = posting.journal(row, accounts)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        posting.write_csv(row, lines, handle, money)
    partial.replace(out)
    debits = sum(line.debit for line in lines)
    typer.echo(f"{out}: {len(lines)} lines, debits {money(debits)} = credits {money(debits)}")
