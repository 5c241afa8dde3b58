"""`xhuma eft`: regulated payments, from the clearing house's inbound files to the homing bank
and back (unpaids, failed corrections, exceptions)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from xhuma.cli.common import Column, ConfigOption, JsonOption, console, database, money, settings, show_rows, when

ENTRY_COLUMNS: list[Column] = [
    ("line", "line"),
    ("kind", "kind"),
    ("user", "user_code"),
    ("seq", "sequence_number"),
    ("action date", "action_date"),
    ("amount", lambda r: money(r["amount_cents"])),
]
"""The columns that name one credit or debit of a file."""

app = typer.Typer(help="Regulated payments: EFT files from the clearing house.", no_args_is_help=True)


@app.command("check")
def eft_check(path: Annotated[Path, typer.Argument(help="An EFT file in xhuma's layout.")]) -> None:
    """Check a file whole without applying it: exit 0 valid, 1 invalid (first error printed), 2 unreadable."""
    from xhuma.eft.check import check_file
    from xhuma.eft.records import RecordError

    try:
        summary = check_file(str(path))
    except OSError as exc:
        typer.echo(f"{path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except RecordError as exc:
        typer.echo(str(exc))
        raise typer.Exit(1) from None
    typer.echo(
        f"valid {summary.content_type} file: transmission {summary.transmission_key}, {summary.records} records, "
        f"{len(summary.set_keys)} sets, {summary.transactions} transactions, "
        f"credits {money(summary.credit_total)}, debits {money(summary.debit_total)}; "
        f"sha256 {summary.content_hash}"
    )


@app.command("ingest")
def eft_ingest(
    path: Annotated[Path, typer.Argument(help="An inbound PAYMENTS or SEC file.")],
    config: ConfigOption = None,
) -> None:
    """Take a file in: refused whole if it was seen before or any record is bad, else every
    transaction is stored in one commit."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from xhuma.eft.intake import ingest
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor

    if not path.is_file():
        typer.echo(f"{path}: no such file", err=True)
        raise typer.Exit(2)
    db = database(config, migrate_schema=True)
    debit_release = settings(config).eft.debit_release
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"checking {path.name}", total=path.stat().st_size)
        result = ingest(db.engine, path, progress=lambda n: bar.advance(task, n), debit_release=debit_release)
    db.run_sync(operator_actions.eft_file_taken(cli_actor(), path.name, result))
    if result.state != "accepted":
        refusal = "duplicate" if result.state == "redelivered" else "rejected"
        typer.echo(f"{path.name}: {refusal} (file {result.file_id}): {result.reason}; nothing was applied")
        raise typer.Exit(1)
    assert result.summary is not None
    typer.echo(
        f"{path.name}: accepted as file {result.file_id}: {result.summary.transactions} transactions in "
        f"{len(result.summary.set_keys)} sets, transmission {result.summary.transmission_key}"
    )
    if result.finding is not None:
        typer.echo(f"{path.name}: exception {result.finding.reason}: {result.finding.detail} (xhuma eft exceptions)")


@app.command("files")
def eft_files(
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Files offered to intake, newest first, with why any was refused."""
    from xhuma.eft.intake import files

    rows = files(database(config).engine)
    show_rows(
        rows,
        [
            ("id", "id"),
            ("name", "name"),
            ("transmission", "transmission_key"),
            ("type", "content_type"),
            ("state", "state"),
            ("transactions", "transactions"),
            ("credits", lambda r: money(r["credit_total"])),
            ("debits", lambda r: money(r["debit_total"])),
            ("received", lambda r: when(r["received_us"])),
            ("why", "error"),
        ],
        as_json=as_json,
    )


@app.command("transactions")
def eft_transactions(
    file_id: Annotated[int, typer.Option("--file", help="The file's id (from `xhuma eft files`).")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The credits, debits and corrections of an accepted file."""
    from xhuma.eft.intake import transactions

    rows = transactions(database(config).engine, file_id)
    show_rows(
        rows,
        [
            *ENTRY_COLUMNS,
            ("homing account", lambda r: f"{r['homing_branch']:06d} {r['homing_account']}"),
            ("name", "homing_account_name"),
            ("state", "state"),
            ("reason", "reason_code"),
        ],
        as_json=as_json,
    )


@app.command("unpaids")
def eft_unpaids(
    as_json: JsonOption = False,
    write: Annotated[
        Path | None, typer.Option("--write", help="Outbox: write the unpaids not yet sent as an UNPAIDS file there.")
    ] = None,
    sender: Annotated[int, typer.Option(help="Our sender code in outbound files.")] = 45001,
    destination: Annotated[int, typer.Option(help="The clearing house's code.")] = 9000,
    config: ConfigOption = None,
) -> None:
    """Inbound credits and debits the homing bank rejected, with its reasons; `--write` puts the
    new ones in the next UNPAIDS output file."""
    from xhuma.eft.intake import unpaids
    from xhuma.eft.outbox import write_outbox

    db = database(config, migrate_schema=write is not None)
    if write is not None:
        today = datetime.now(UTC).date()
        written = write_outbox(db.engine, write, today=today, sender=sender, destination=destination)
        typer.echo(f"wrote {written}" if written else "no new unpaids")
        return
    rows = unpaids(db.engine)
    show_rows(
        rows,
        [
            ("file", "file_id"),
            *ENTRY_COLUMNS,
            ("reason", "reason_code"),
            ("why", "reason_text"),
            ("output file", lambda r: r["unpaid_file"] or "(next)"),
        ],
        as_json=as_json,
    )


@app.command("secfail")
def eft_secfail(
    write: Annotated[Path, typer.Option("--write", help="Outbox to write the next SECFAIL file to.")],
    sender: Annotated[int, typer.Option(help="Our sender code in outbound files.")] = 45001,
    destination: Annotated[int, typer.Option(help="The clearing house's code.")] = 9000,
    config: ConfigOption = None,
) -> None:
    """Write the system error corrections that could not be applied as the next SECFAIL file."""
    from xhuma.eft.outbox import write_secfail_outbox

    today = datetime.now(UTC).date()
    written = write_secfail_outbox(
        database(config, migrate_schema=True).engine, write, today=today, sender=sender, destination=destination
    )
    typer.echo(f"wrote {written}" if written else "no new failed corrections")


@app.command("exceptions")
def eft_exceptions(
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Open reconciliation exceptions of inbound EFT: messages the bank did not acknowledge or
    report on before the window closed, or refused outright (the queue stopped them), originals
    whose correction failed, and files with a gap or a repeat in their sender's transmission
    numbers (those name a file and no line)."""
    from xhuma.eft.intake import exceptions

    rows = exceptions(database(config).engine)
    show_rows(
        rows,
        [
            ("id", "id"),
            ("reason", "reason"),
            ("file", "file_id"),
            ("line", "line"),
            ("kind", "kind"),
            ("user", "user_code"),
            ("seq", "sequence_number"),
            ("amount", lambda r: money(r["amount_cents"])),
            ("message", "message_id"),
            ("since", lambda r: when(r["created_us"])),
            ("detail", "detail"),
        ],
        as_json=as_json,
    )
