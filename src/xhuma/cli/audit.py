"""`xhuma audit`: the tamper-evident log of operator actions, and a check of its hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from xhuma.cli.common import ConfigOption, JsonOption, database, show_rows, when
from xhuma.security import audit

app = typer.Typer(help="The audit log of operator actions, in a hash chain.", no_args_is_help=True)


@app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. clients.add, saf.retry.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Operator actions, newest first: who, from where, what changed (before -> after)."""
    show_rows(
        database(config).run_sync(audit.entries(limit, action)),
        [
            ("seq", "seq"),
            ("at (UTC)", lambda r: when(r["at_us"])),
            ("actor", "actor"),
            ("source", "source"),
            ("action", "action"),
            ("target", "target"),
            ("before", "before"),
            ("after", "after"),
        ],
        as_json=as_json,
    )


@app.command("verify")
def audit_verify(config: ConfigOption = None) -> None:
    """Check the hash chain: exit 0 when every entry holds, 1 naming the first that does not."""
    counted, broken = database(config).run_sync(audit.verify())
    if broken is not None:
        seq, why = broken
        typer.echo(f"audit log broken at entry {seq} of {counted}: {why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log holds: {counted} entries, each chained to the one before")
