"""`xhuma tx`: the transaction journal, read-only."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, parse_time, show_rows, when
from xhuma.storage import journal

app = typer.Typer(help="The transaction journal.", no_args_is_help=True)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A journal row without the stored bodies (the messages carry them)."""
    return {k: v for k, v in row.items() if k not in ("retail_response", "upstream_request")}


@app.command("list")
def tx_list(
    since: Annotated[str | None, typer.Option(help="From this ISO date-time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO date-time (UTC).")] = None,
    meter: Annotated[str | None, typer.Option(help="Meter id.")] = None,
    client: Annotated[str | None, typer.Option(help="Client institution id.")] = None,
    state: Annotated[str | None, typer.Option(help="State, e.g. approved, unknown, confirmed.")] = None,
    kind: Annotated[str | None, typer.Option(help="Kind, e.g. purchase, meter_lookup, reversal.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List transactions, newest first."""
    since_us, until_us = parse_time(since, "--since"), parse_time(until, "--until")
    rows = database(config).run_sync(
        journal.search(
            since_us=since_us, until_us=until_us, meter_id=meter, client_id=client, state=state, kind=kind, limit=limit
        )
    )
    show_rows(
        [_public(r) for r in rows],
        [
            ("created (UTC)", lambda r: when(r["created_us"])),
            ("id", "id"),
            ("retail id", "retail_id"),
            ("client", "client_id"),
            ("kind", "kind"),
            ("meter", "meter_id"),
            ("amount", "amount"),
            ("state", "state"),
            ("provider", "provider"),
        ],
        as_json=as_json,
    )


@app.command("show")
def tx_show(
    tx_id: Annotated[str, typer.Argument(metavar="ID", help="Our transaction id or the retailer's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show a transaction with the messages of both legs, in order, with their timing."""
    view = database(config).run_sync(journal.show(tx_id))
    if view is None:
        console.print(f"[red]no transaction {tx_id}[/]")
        raise typer.Exit(1)
    if as_json:
        typer.echo(
            msgspec.json.encode(
                {
                    "transaction": _public(view.row),
                    "messages": view.messages,
                    "advices": [_public(c) for c in view.children],
                }
            ).decode()
        )
        return
    row = view.row
    console.print(
        f"[bold]{row['kind']}[/] {row['id']}  retail id {row['retail_id']}  client {row['client_id']}\n"
        f"state [bold]{row['state']}[/]  meter {row['meter_id'] or '-'}  amount {row['amount'] or '-'} "
        f"{row['currency'] or ''}  provider {row['provider'] or '-'}  created {when(row['created_us'])} UTC"
    )
    start = view.messages[0]["at_us"] if view.messages else row["created_us"]
    for m in view.messages:
        arrow = {
            ("retail", "request"): "retailer -> xhuma",
            ("retail", "response"): "retailer <- xhuma",
            ("upstream", "request"): f"xhuma -> {m['peer']}",
            ("upstream", "response"): f"xhuma <- {m['peer']}",
        }
        header = f"+{(m['at_us'] - start) / 1000:9.1f} ms  {arrow[(m['leg'], m['direction'])]:<24} {m['operation']}"
        if m["status"] is not None:
            header += f"  HTTP {m['status']}"
        if m["elapsed_us"] is not None:
            header += f"  ({m['elapsed_us'] / 1000:.1f} ms)"
        if m["url"]:
            header += f"  {m['url']}"
        console.print(header, markup=False)
        if m["body"]:
            console.print("    " + m["body"], markup=False, soft_wrap=True)
    for child in view.children:
        console.print(
            f"advice: {child['kind']} {child['id']} (retail id {child['retail_id']}) {when(child['created_us'])} UTC"
        )


@app.command("rejected")
def tx_rejected(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List retail messages refused before a transaction was opened for them, newest first."""
    show_rows(
        database(config).run_sync(journal.rejections(limit)),
        [
            ("at (UTC)", lambda r: when(r["at_us"])),
            ("interface", "interface"),
            ("operation", "operation"),
            ("client", "client_id"),
            ("retail id", "retail_id"),
            ("status", "status"),
            ("error", "error_type"),
            ("reason", "reason"),
        ],
        as_json=as_json,
    )


@app.command("stats")
def tx_stats(config: ConfigOption = None) -> None:
    """How many transactions are in each state."""
    for state, n in sorted(database(config).run_sync(journal.count_by_state()).items()):
        console.print(f"{state:<14} {n}")
