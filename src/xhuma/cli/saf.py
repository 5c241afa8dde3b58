"""`xhuma saf` (the store-and-forward queue of must-deliver messages) and `xhuma exceptions`
(what a person must settle)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, settings, show_rows, when

app = typer.Typer(help="The store-and-forward queue of must-deliver messages.", no_args_is_help=True)
exceptions_app = typer.Typer(help="Reconciliation exceptions: what a person must settle.", no_args_is_help=True)


@app.command("work")
def saf_work(config: ConfigOption = None) -> None:
    """Run a store-and-forward worker process (as many as you like, on any machine)."""
    import asyncio
    import signal

    from xhuma.node import Node

    node_settings = settings(config)

    async def main() -> None:
        node = Node(node_settings, run_worker=True)
        await node.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(f"store-and-forward worker {node.worker.owner if node.worker else ''} running")
        await stop.wait()
        await node.stop()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


@app.command("list")
def saf_list(
    state: Annotated[str | None, typer.Option(help="pending, delivered, exception or resolved.")] = None,
    queue_name: Annotated[str | None, typer.Option("--queue", help="e.g. ppu:sim")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List queue entries, newest first."""
    from xhuma.saf import queue

    show_rows(
        database(config).run_sync(queue.list_entries(state, queue_name, limit)),
        [
            ("id", "id"),
            ("queue", "queue"),
            ("operation", "operation"),
            ("state", "state"),
            ("attempts", "attempts"),
            ("last status", "last_status"),
            ("last error", "last_error"),
            ("created (UTC)", lambda r: when(r["created_us"])),
        ],
        as_json=as_json,
    )


@app.command("show")
def saf_show(entry_id: int, config: ConfigOption = None) -> None:
    """One entry, with the message it carries."""
    from xhuma.saf import queue

    entry = database(config).run_sync(queue.get_entry(entry_id))
    if entry is None:
        console.print(f"[red]no entry {entry_id}[/]")
        raise typer.Exit(1)
    typer.echo(msgspec.json.encode(entry).decode())


@app.command("retry")
def saf_retry(entry_id: int, config: ConfigOption = None) -> None:
    """Put an entry in state exception back in the queue, due now."""
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor

    if not database(config, migrate_schema=True).run_sync(operator_actions.retry_saf(cli_actor(), entry_id)):
        console.print(f"[red]entry {entry_id} is not in state exception[/]")
        raise typer.Exit(1)
    console.print(f"entry {entry_id} queued again")


@app.command("resolve")
def saf_resolve(
    entry_id: int,
    note: Annotated[str, typer.Option(help="How it was settled (kept with the entry).")],
    config: ConfigOption = None,
) -> None:
    """Close an entry in state exception by hand."""
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor

    if not note.strip():
        raise typer.BadParameter("must say how it was resolved", param_hint="--note")
    done = database(config, migrate_schema=True).run_sync(operator_actions.resolve_saf(cli_actor(), entry_id, note))
    if not done:
        console.print(f"[red]entry {entry_id} is not in state exception[/]")
        raise typer.Exit(1)
    console.print(f"entry {entry_id} resolved")


@app.command("stats")
def saf_stats(config: ConfigOption = None) -> None:
    """How many entries are in each state."""
    from xhuma.saf import queue

    for state, n in sorted(database(config).run_sync(queue.counts()).items()):
        console.print(f"{state:<10} {n}")


@exceptions_app.command("list")
def exceptions_list(
    state: Annotated[str, typer.Option(help="open, or all.")] = "open",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Reconciliation exceptions: reversals nobody upstream will make, deliveries that stopped."""
    from xhuma.saf import queue

    show_rows(
        database(config).run_sync(queue.list_exceptions(None if state == "all" else state)),
        [
            ("id", "id"),
            ("transaction", "tx_id"),
            ("reason", "reason"),
            ("detail", "detail"),
            ("state", "state"),
            ("created (UTC)", lambda r: when(r["created_us"])),
        ],
        as_json=as_json,
    )
