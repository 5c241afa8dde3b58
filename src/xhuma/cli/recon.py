"""`xhuma recon`: reconciling our journal with a counterparty's files, one process and day at a
time (the processes are `[[finance.processes]]` in the configuration; see `xhuma.finance`)."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, money, settings, show_rows, when

if TYPE_CHECKING:
    from xhuma.finance.intake import Taken
    from xhuma.finance.processes import Process

app = typer.Typer(help="Reconciliation: load counterparty files, match them with the journal.", no_args_is_help=True)
ProcessOption = Annotated[str, typer.Option("--process", help="The process's name in [[finance.processes]].")]
DateOption = Annotated[str, typer.Option("--date", help="The day, YYYY-MM-DD, in the process's time zone.")]


def process_named(config: Path | None, name: str) -> Process:
    found = settings(config).process(name)
    if found is None:
        known = ", ".join(p.name for p in settings(config).processes) or "none configured"
        typer.echo(f"no reconciliation process {name!r} ({known})", err=True)
        raise typer.Exit(2)
    return found


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"--date: {value!r} is not a date YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None


@app.command("load")
def recon_load(
    path: Annotated[Path, typer.Argument(help="The counterparty's file, in the process's file specification.")],
    process_name: ProcessOption,
    config: ConfigOption = None,
) -> None:
    """Take a file in, checked whole first: one bad line (each is listed) and nothing is loaded;
    a file with the same content or name as one already taken is refused."""
    from xhuma.finance.intake import take

    process = process_named(config, process_name)
    try:
        content = path.read_bytes()
    except OSError as exc:
        typer.echo(f"{path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    taken = take(database(config, migrate_schema=True).run_sync, process, path.name, content)
    if not _report(taken):
        raise typer.Exit(1)


def _report(taken: Taken) -> bool:
    """Say what became of a file; whether it was loaded."""
    from xhuma.finance import store

    if taken.status == store.LOADED:
        typer.echo(f"{taken.name}: LOADED as file {taken.file_id}: {taken.records} records, {money(taken.amount)}")
        return True
    for problem in taken.problems:
        typer.echo(f"{taken.name}:{problem.line}: {problem.reason}: {problem.raw}", err=True)
    typer.echo(f"{taken.name}: {taken.why()}" + ("; nothing was loaded" if taken.duplicate_of else ""), err=True)
    return False


@app.command("intake")
def recon_intake(
    process_name: Annotated[
        str | None, typer.Option("--process", help="Only this process's inbox (default: every process's).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Load every file waiting in the processes' inboxes, once: each is moved to processed/ or
    to refused/ (with NAME.errors.txt beside it). Exit 1 if any was refused."""
    from xhuma.finance.intake import take_inbox

    processes = [process_named(config, process_name)] if process_name else list(settings(config).processes)
    with_inbox = [p for p in processes if p.inbox is not None]
    if not with_inbox:
        typer.echo(f"no inbox configured for {process_name or 'any process'} (set inbox in the process)", err=True)
        raise typer.Exit(2)
    db = database(config, migrate_schema=True)
    results = [_report(taken) for process in with_inbox for taken in take_inbox(db.run_sync, process)]
    typer.echo(f"{len(results)} file(s) taken, {results.count(False)} refused")
    if not all(results):
        raise typer.Exit(1)


@app.command("extract")
def recon_extract(
    process_name: ProcessOption,
    day: DateOption,
    out: Annotated[Path, typer.Option("--out", help="The folder the extract is written in.")] = Path("."),
    config: ConfigOption = None,
) -> None:
    """Write xhuma's own SWITCH extract of the day: our records of the process's service and
    counterparty, in the process's own file specification, for the counterparty to reconcile."""
    import time

    from xhuma.finance import store
    from xhuma.finance.extract import ExtractError, extract_name, write_extract

    process = process_named(config, process_name)
    the_day = parse_day(day)
    records = database(config).run_sync(store.our_records(process, the_day))
    try:
        content = write_extract(process, the_day, records)
    except ExtractError as exc:
        typer.echo(f"{process.name} {the_day}: cannot be written in the process's file specification: {exc}", err=True)
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    path = out / extract_name(process, the_day, int(time.time()))
    path.write_bytes(content)
    typer.echo(f"{path}: {len(records)} records, {money(sum(r.amount for r in records))}")


@app.command("run")
def recon_run(process_name: ProcessOption, day: DateOption, config: ConfigOption = None) -> None:
    """Match the day's records (and those still unmatched from the expiry period before it); with
    an `outbox` on the process, the day's reports are written there after the run is stored."""
    from xhuma.finance import store

    process = process_named(config, process_name)
    the_day = parse_day(day)
    db = database(config, migrate_schema=True)
    done = db.run_sync(store.run(process, the_day, str(uuid.uuid4())))
    typer.echo(f"{process.name} {the_day}: run {done.run_id}: {done.ours} of ours, {done.theirs} of theirs matched")
    if process.outbox is not None:
        from xhuma.cli.reports import write_reports

        write_reports(db, process, the_day, Path(process.outbox), after_run=True)


@app.command("summary")
def recon_summary(
    process_name: ProcessOption, day: DateOption, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Counts and amounts of the day's results."""
    from xhuma.finance import store

    process = process_named(config, process_name)
    result = database(config).run_sync(store.summary(process.name, parse_day(day)))
    if as_json:
        typer.echo(msgspec.json.encode(result).decode())
        return
    rows = [{"category": name, **result[name]} for name in store.CATEGORIES]
    show_rows(
        rows,
        [
            ("result", "category"),
            ("count", "count"),
            ("amount (ours)", lambda r: money(r["amount"])),
            ("amount (theirs)", lambda r: money(r.get("their_amount"))),
        ],
        as_json=False,
    )
    console.print(
        f"{result['records']['ours']} of ours, {result['records']['theirs']} of theirs; {result['runs']} run(s)"
    )


@app.command("list")
def recon_list(
    process_name: ProcessOption,
    day: DateOption,
    status: Annotated[
        str | None,
        typer.Option(
            help="matched, partially_matched, auto_resolved, unmatched, unmatched_ours, unmatched_theirs, expired "
            "or written_off."
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Each record the day's run decided, with the rule that decided it and what differs."""
    from xhuma.finance import store

    if status is not None and status not in store.LIST_STATUSES:
        raise typer.BadParameter(f"one of {', '.join(store.LIST_STATUSES)}", param_hint="--status")
    process = process_named(config, process_name)
    rows = database(config).run_sync(store.results(process.name, parse_day(day), status))
    show_rows(
        rows,
        [
            ("side", "side"),
            ("record", "record_id"),
            ("status", "status"),
            ("rule", "rule"),
            ("reference", "reference"),
            ("amount", lambda r: money(r["amount"])),
            ("time", lambda r: when(r["time_us"])),
            ("with", lambda r: ", ".join(r["counterparts"])),
            ("differences", lambda r: ", ".join(f"{k} {v}" for k, v in r["differences"].items())),
            (
                "resolution / missing",
                lambda r: r["resolution"] or (f"no record of {r['missing']}" if r["missing"] else ""),
            ),
        ],
        as_json=as_json,
    )


@app.command("files")
def recon_files(process_name: ProcessOption, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The files offered to the process and what became of each."""
    from xhuma.finance import store

    process = process_named(config, process_name)
    show_rows(
        database(config).run_sync(store.files(process.name)),
        [
            ("id", "id"),
            ("name", "name"),
            ("status", "status"),
            ("records", "records"),
            ("received", lambda r: when(r["received_us"])),
        ],
        as_json=as_json,
    )
