"""`xhuma routing`: the contract table (which provider serves which meter) and the operator's
preferences and weights; every change is checked whole and kept in the routing audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xhuma.cli.common import ActorOption, ConfigOption, JsonOption, console, database, settings, show_rows, when
from xhuma.security import operator_actions
from xhuma.security.audit import cli_actor
from xhuma.storage.db import Database

app = typer.Typer(help="The contract table and routing preferences.", no_args_is_help=True)


@app.command("table")
def routing_table(
    meter: Annotated[str | None, typer.Option(help="One meter only.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """What each provider said about each meter (supported, not_supported, unconfirmed)."""
    from xhuma.routing import contracts

    show_rows(
        database(config).run_sync(contracts.table(meter)),
        [
            ("meter", "meter_id"),
            ("provider", "provider"),
            ("status", "status"),
            ("municipality", "municipality"),
            ("learned (UTC)", lambda r: when(r["learned_us"])),
        ],
        as_json=as_json,
    )


def _routing_change(config: Path | None, *, writes: bool = True) -> tuple[Database, frozenset[str]]:
    """The database, and the names of the configured providers a change may name."""
    known = frozenset(p.name for p in settings(config).providers)
    return database(config, migrate_schema=writes), known


def _refused(exc: Exception) -> typer.Exit:
    from xhuma.routing.operator import RoutingChangeError

    errors = exc.errors if isinstance(exc, RoutingChangeError) else []
    for error in errors:
        shown = "" if error.invalid_value is None else f" (got {error.invalid_value!r})"
        console.print(f"[red]{error.field}[/red]: {error.error}{shown}", highlight=False)
    console.print("nothing was changed")
    return typer.Exit(2)


@app.command("prefer")
def routing_prefer(
    municipality: Annotated[str, typer.Argument(help="As learned from lookups, e.g. 'City of Cape Town Electricity'.")],
    providers: Annotated[str, typer.Option(help="Providers in order of preference, comma-separated.")] = "",
    exclude: Annotated[str, typer.Option(help="Providers never to use here, comma-separated.")] = "",
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Set (or with no providers, clear) a municipality's preferred and excluded providers."""
    from xhuma.routing.operator import RoutingChangeError, preference_change

    db, known = _routing_change(config)
    ranked = [p.strip() for p in providers.split(",") if p.strip()]
    excluded = [p.strip() for p in exclude.split(",") if p.strip()]
    try:
        change = preference_change(municipality, ranked, excluded, known)
    except RoutingChangeError as exc:
        raise _refused(exc) from None
    db.run_sync(operator_actions.set_preferences(cli_actor(actor), [change], "set_preferences"))
    console.print(change.describe(), markup=False)


@app.command("upload")
def routing_upload(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with header municipality,provider,rank (rank: 1.. or excluded).")
    ],
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Replace the preferences of every municipality the file names; the file is checked whole
    first, and nothing changes unless all of it is valid."""
    from xhuma.routing.operator import RoutingChangeError, preferences_from_csv

    db, known = _routing_change(config)
    try:
        changes = preferences_from_csv(csv_file.read_text(encoding="utf-8-sig"), known)
    except RoutingChangeError as exc:
        raise _refused(exc) from None
    db.run_sync(operator_actions.set_preferences(cli_actor(actor), changes, "upload_preferences"))
    for change in changes:
        console.print(change.describe(), markup=False)


@app.command("weights")
def routing_weights(
    settings_: Annotated[
        list[str] | None,
        typer.Argument(metavar="[PROVIDER=WEIGHT]...", help="e.g. ipay=50 ontec=20; =configured clears."),
    ] = None,
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Show the load-balancing weights, or set some (PROVIDER=WEIGHT, or PROVIDER=configured to
    go back to the configuration file's weight)."""
    from xhuma.routing import contracts
    from xhuma.routing.operator import RoutingChangeError, weight_changes

    db, known = _routing_change(config, writes=bool(settings_))
    if settings_:
        raw: dict[str, Any] = {}
        for item in settings_:
            name, _, value = item.partition("=")
            try:
                raw[name] = None if value == "configured" else float(value)
            except ValueError:
                raw[name] = value
        try:
            changes = weight_changes(raw, known)
        except RoutingChangeError as exc:
            raise _refused(exc) from None
        db.run_sync(operator_actions.set_weights(cli_actor(actor), changes))
    configured = {p.name: p.weight for p in settings(config).providers}
    operator = db.run_sync(contracts.weights())
    rows = [
        {"provider": name, "weight": operator.get(name, weight), "set_by": "operator" if name in operator else "config"}
        for name, weight in sorted(configured.items())
    ]
    show_rows(
        rows, [("provider", "provider"), ("weight", lambda r: f"{r['weight']:g}"), ("set by", "set_by")], as_json=False
    )


@app.command("rebroadcast")
def routing_rebroadcast(
    meter: Annotated[str, typer.Argument(help="The meter to ask every provider about again.")],
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Ask every provider about a meter now, and show what they said."""
    from xhuma.routing.operator import RoutingChangeError, check_meter_id

    try:
        check_meter_id(meter)
    except RoutingChangeError as exc:
        raise _refused(exc) from None

    async def ask(node: Any) -> None:
        await node.db.run(operator_actions.note_rebroadcast(cli_actor(actor), meter))
        await node.switch.lookups.rebroadcast(meter)

    _with_node(config, ask)
    routing_table(meter=meter, as_json=False, config=config)


@app.command("refresh")
def routing_refresh(
    older_than_days: Annotated[
        float | None, typer.Option(help="Meters unheard of for this long (default: routing_refresh_days).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many meters.")] = 1000,
    config: ConfigOption = None,
) -> None:
    """Re-broadcast the meters no provider has spoken about for a while (what `serve` does on
    schedule)."""
    from xhuma.routing.refresh import refresh_stale

    async def refresh(node: Any) -> None:
        days = node.settings.routing_refresh_days if older_than_days is None else older_than_days
        meters = await refresh_stale(node.db, node.switch.lookups.rebroadcast, days * 86400, limit=limit)
        console.print(f"asked every provider again about {len(meters)} meters")

    _with_node(config, refresh)


def _with_node(config: Path | None, work: Any) -> None:
    """Run `work(node)` on a node of our own (no worker, no schedules) for a one-off command."""
    import asyncio

    from xhuma.node import Node

    node_settings = settings(config)

    async def main() -> None:
        node = Node(node_settings, run_worker=False)
        await node.start()
        try:
            await work(node)
        finally:
            await node.stop()

    asyncio.run(main())


@app.command("preferences")
def routing_preferences(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every municipality's preferences."""
    from xhuma.routing import contracts

    show_rows(
        database(config).run_sync(contracts.preferences()),
        [
            ("municipality", "municipality"),
            ("provider", "provider"),
            ("rank", "rank"),
            ("excluded", lambda r: "yes" if r["excluded"] else ""),
        ],
        as_json=as_json,
    )


@app.command("audit")
def routing_audit(config: ConfigOption = None) -> None:
    """Who changed routing, and when."""
    from xhuma.routing import contracts

    for r in database(config).run_sync(contracts.audit()):
        console.print(f"{when(r['at_us'])} UTC  {r['actor']}  {r['action']}  {r['detail']}", markup=False)
