"""`xhuma report`: a process's recon-day reports (summary, exceptions) as CSV and PDF, written
on demand to `--out` or the process's outbox (see `xhuma.finance.reports`). `xhuma recon run`
writes the same reports to the outbox after each run (`write_reports`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xhuma.cli.common import ConfigOption, database
from xhuma.cli.recon import DateOption, ProcessOption, parse_day, process_named

if TYPE_CHECKING:
    from xhuma.finance.processes import Process
    from xhuma.storage.db import Database

app = typer.Typer(help="Reports of a recon day (summary, exceptions) as CSV and PDF.", no_args_is_help=True)


class Format(StrEnum):
    csv = "csv"
    pdf = "pdf"


FormatOption = Annotated[
    list[Format] | None, typer.Option("--format", help="csv or pdf; repeat it for both (default: both).")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="The folder to write to (default: the process's outbox).")
]


def write_reports(
    db: Database,
    process: Process,
    day: date,
    folder: Path,
    kinds: Sequence[str] = ("summary", "exceptions"),
    formats: Sequence[str] = ("csv", "pdf"),
    *,
    after_run: bool = False,
) -> list[Path]:
    """Read the day in one transaction, write the reports; a folder that cannot take them is one
    line and exit status 2 (after a run: the run is stored all the same)."""
    from xhuma.finance import reports
    from xhuma.storage.db import now_us

    report = db.run_sync(reports.read(process, day, now_us()))
    if not report.summary["runs"]:
        typer.echo(f"{process.name} {day}: the day has not been run: `xhuma recon run` it first", err=True)
        raise typer.Exit(2)
    try:
        written = reports.write(report, folder, kinds, formats)
    except reports.ReportError as exc:
        stored = "the run is stored, its reports are not: " if after_run else ""
        typer.echo(f"{process.name} {day}: {stored}{exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")
    return written


def _report(
    kind: str, process_name: str, day: str, formats: list[Format] | None, out: Path | None, config: Path | None
) -> None:
    process = process_named(config, process_name)
    the_day = parse_day(day)
    folder = out if out is not None else (Path(process.outbox) if process.outbox else None)
    if folder is None:
        typer.echo(f"{process.name}: no --out given and the process has no outbox configured", err=True)
        raise typer.Exit(2)
    chosen = [f.value for f in dict.fromkeys(formats)] if formats else ["csv", "pdf"]
    kinds = ("summary", "exceptions") if kind == "day" else (kind,)
    write_reports(database(config), process, the_day, folder, kinds, chosen)


COMMANDS = {
    "recon": ("summary", "The recon summary: counts and amounts per result, and the day's records per hour (PDF)."),
    "exceptions": (
        "exceptions",
        "Every record the day did not match: unmatched (which side is missing), partially matched (what "
        "differs, by how much), expired; with reference, amount, time, side, rule and reason.",
    ),
    "day": ("day", "Both reports, as `xhuma recon run` writes them to the process's outbox."),
}


def _command(kind: str, help_text: str) -> Callable[..., None]:
    def command(
        process_name: ProcessOption,
        day: DateOption,
        formats: FormatOption = None,
        out: OutOption = None,
        config: ConfigOption = None,
    ) -> None:
        _report(kind, process_name, day, formats, out, config)

    command.__doc__ = help_text
    return command


for _name, (_kind, _help) in COMMANDS.items():
    app.command(_name)(_command(_kind, _help))
