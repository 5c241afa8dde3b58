"""The `xhuma` command."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from xhuma.config import ConfigError, load_settings
from xhuma.storage import journal
from xhuma.storage.db import Database, migrate

app = typer.Typer(help="xhuma: a payments transaction switch.", no_args_is_help=True, add_completion=False)
clients_app = typer.Typer(
    help="API client credentials (HTTP Basic), each bound to one client id.", no_args_is_help=True
)
tx_app = typer.Typer(help="The transaction journal.", no_args_is_help=True)
simulate_app = typer.Typer(
    help="Simulated providers: real HTTP servers speaking the real protocols.", no_args_is_help=True
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
saf_app = typer.Typer(help="The store-and-forward queue of must-deliver messages.", no_args_is_help=True)
routing_app = typer.Typer(help="The contract table and routing preferences.", no_args_is_help=True)
exceptions_app = typer.Typer(help="Reconciliation exceptions: what a person must settle.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(tx_app, name="tx")
app.add_typer(simulate_app, name="simulate")
app.add_typer(db_app, name="db")
app.add_typer(saf_app, name="saf")
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(routing_app, name="routing")
console = Console()

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file (or XHUMA_CONFIG).")]


def _database(config: Path | None = None) -> Database:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    db = Database(settings.database_url)
    migrate(db.engine)
    return db


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the retail API.")] = 8080,
) -> None:
    """Run the switch: the retail API (PPU v3), health and OpenAPI."""
    from xhuma.api.app import serve as run_server

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    run_server(settings, host, port)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the switch's retail API.")] = 8080,
    simulator_port: Annotated[int, typer.Option(help="Port of the simulated PPU provider.")] = 8090,
    voucher_port: Annotated[int, typer.Option(help="Port of the simulated voucher provider.")] = 8091,
    once: Annotated[bool, typer.Option(help="Stop after the sample flow instead of serving on.")] = False,
) -> None:
    """Start simulated providers and the switch, run a purchase and a voucher through them, keep serving."""
    from xhuma.demo import run_demo

    raise typer.Exit(run_demo(port, simulator_port, voucher_port, once=once))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the schema to the newest revision."""
    db = _database(config)
    console.print(f"schema is current on {db.engine.url.render_as_string(hide_password=True)}")


# --- clients ---------------------------------------------------------------------------------


@clients_app.command("add")
def clients_add(
    username: Annotated[str, typer.Option(help="Basic-auth user name.")],
    password: Annotated[str, typer.Option(help="Basic-auth password (stored as an argon2 hash).")],
    client_id: Annotated[
        str, typer.Option("--client-id", help="The client institution id this credential may act for.")
    ],
    name: Annotated[str | None, typer.Option(help="A readable name.")] = None,
    role: Annotated[
        str, typer.Option(help="retail (the retail interfaces), admin (the /admin API) or bank (EFT status reports).")
    ] = "retail",
    config: ConfigOption = None,
) -> None:
    """Add a credential, or replace the password and binding of an existing one."""
    from xhuma.security.credentials import ROLES, add_client

    if not username or ":" in username:
        raise typer.BadParameter("must be non-empty and contain no ':'", param_hint="--username")
    if not password:
        raise typer.BadParameter("must not be empty", param_hint="--password")
    if not client_id or len(client_id) > 40:
        raise typer.BadParameter("must be 1 to 40 characters", param_hint="--client-id")
    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    db = _database(config)
    db.run_sync(add_client(username, password, client_id, name or username, role))
    console.print(f"client [bold]{username}[/] may act for client id [bold]{client_id}[/]")


@clients_app.command("list")
def clients_list(config: ConfigOption = None) -> None:
    """List credentials (never their secrets)."""
    from xhuma.security.credentials import list_clients

    table = Table("username", "client id", "name", "role", "enabled")
    for c in _database(config).run_sync(list_clients()):
        table.add_row(c.username, c.client_id, c.name, c.role, "yes" if c.enabled else "no")
    console.print(table)


# --- transactions ----------------------------------------------------------------------------


def _when(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _parse_time(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "expected an ISO date or date-time, e.g. 2026-11-22T10:00", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1e6)


@tx_app.command("list")
def tx_list(
    since: Annotated[str | None, typer.Option(help="From this ISO date-time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO date-time (UTC).")] = None,
    meter: Annotated[str | None, typer.Option(help="Meter id.")] = None,
    client: Annotated[str | None, typer.Option(help="Client institution id.")] = None,
    state: Annotated[str | None, typer.Option(help="State, e.g. approved, unknown, confirmed.")] = None,
    kind: Annotated[str | None, typer.Option(help="Kind, e.g. purchase, meter_lookup, reversal.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """List transactions, newest first."""
    rows = _database(config).run_sync(
        journal.search(
            since_us=_parse_time(since, "--since"),
            until_us=_parse_time(until, "--until"),
            meter_id=meter,
            client_id=client,
            state=state,
            kind=kind,
            limit=limit,
        )
    )
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(_public(row)).decode())
        return
    table = Table("created (UTC)", "id", "retail id", "client", "kind", "meter", "amount", "state", "provider")
    for r in rows:
        table.add_row(
            _when(r["created_us"]),
            r["id"],
            r["retail_id"],
            r["client_id"],
            r["kind"],
            r["meter_id"] or "",
            "" if r["amount"] is None else str(r["amount"]),
            r["state"],
            r["provider"] or "",
        )
    console.print(table)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("retail_response", "upstream_request")}


@tx_app.command("show")
def tx_show(
    tx_id: Annotated[str, typer.Argument(metavar="ID", help="Our transaction id or the retailer's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show a transaction with the messages of both legs, in order, with their timing."""
    view = _database(config).run_sync(journal.show(tx_id))
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
        f"{row['currency'] or ''}  provider {row['provider'] or '-'}  created {_when(row['created_us'])} UTC"
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
            f"advice: {child['kind']} {child['id']} (retail id {child['retail_id']}) {_when(child['created_us'])} UTC"
        )


@tx_app.command("rejected")
def tx_rejected(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """List retail messages refused before a transaction was opened for them, newest first."""
    rows = _database(config).run_sync(journal.rejections(limit))
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("at (UTC)", "interface", "operation", "client", "retail id", "status", "error", "reason")
    for r in rows:
        table.add_row(
            _when(r["at_us"]),
            r["interface"],
            r["operation"],
            r["client_id"] or "",
            r["retail_id"] or "",
            str(r["status"]),
            r["error_type"] or "",
            r["reason"],
        )
    console.print(table)


@tx_app.command("stats")
def tx_stats(config: ConfigOption = None) -> None:
    """How many transactions are in each state."""
    for state, n in sorted(_database(config).run_sync(journal.count_by_state()).items()):
        console.print(f"{state:<14} {n}")


# --- simulators ------------------------------------------------------------------------------


@simulate_app.command("ppu")
def simulate_ppu(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[str, typer.Option(help="Provider name used in its identifiers.")] = "sim",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency per request.")] = 0.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of purchases answered 500 after being recorded.")
    ] = 0.0,
    tst011_delay: Annotated[float, typer.Option(help="Seconds TST011 purchases hang before their 504.")] = 10.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
) -> None:
    """A provider speaking the Prepaid Utility Service Interface v3 (test meters TST001-TST011)."""
    from xhuma.simulators.ppu import SimulatorConfig, run

    run(
        SimulatorConfig(
            name=name, latency_ms=latency_ms, failure_rate=failure_rate, tst011_delay=tst011_delay, seed=seed
        ),
        host,
        port,
    )


@simulate_app.command("vouchers")
def simulate_vouchers(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8091,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[str, typer.Option(help="Provider name used in its identifiers.")] = "vouchr",
    kind: Annotated[str, typer.Option(help="full, or stellr (no advices, retries, redemptions, refunds).")] = "full",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency per request.")] = 0.0,
    lose_responses: Annotated[int, typer.Option(min=0, help="Issue the next N vouchers, then never answer.")] = 0,
    mode: Annotated[str, typer.Option(help="normal, unavailable (503), hang or garbage.")] = "normal",
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
) -> None:
    """A voucher provider speaking the Single Use Voucher interface v1."""
    from xhuma.simulators.vouchers import KINDS, MODES, VoucherSimConfig, run

    if kind not in KINDS:
        raise typer.BadParameter(f"one of {', '.join(KINDS)}", param_hint="--kind")
    if mode not in MODES:
        raise typer.BadParameter(f"one of {', '.join(MODES)}", param_hint="--mode")
    config = VoucherSimConfig(
        name=name, kind=kind, latency_ms=latency_ms, mode=mode, lose_responses=lose_responses, seed=seed
    )
    run(config, host, port)


# --- store-and-forward -----------------------------------------------------------------------


@saf_app.command("work")
def saf_work(config: ConfigOption = None) -> None:
    """Run a store-and-forward worker process (as many as you like, on any machine)."""
    import asyncio
    import signal

    from xhuma.node import Node

    settings = load_settings(config)

    async def main() -> None:
        node = Node(settings, run_worker=True)
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


@saf_app.command("list")
def saf_list(
    state: Annotated[str | None, typer.Option(help="pending, delivered, exception or resolved.")] = None,
    queue_name: Annotated[str | None, typer.Option("--queue", help="e.g. ppu:sim")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """List queue entries, newest first."""
    from xhuma.saf import queue

    rows = _database(config).run_sync(queue.list_entries(state, queue_name, limit))
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("id", "queue", "operation", "state", "attempts", "last status", "last error", "created (UTC)")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["queue"],
            r["operation"],
            r["state"],
            str(r["attempts"]),
            "" if r["last_status"] is None else str(r["last_status"]),
            r["last_error"] or "",
            _when(r["created_us"]),
        )
    console.print(table)


@saf_app.command("show")
def saf_show(entry_id: int, config: ConfigOption = None) -> None:
    """One entry, with the message it carries."""
    from xhuma.saf import queue

    entry = _database(config).run_sync(queue.get_entry(entry_id))
    if entry is None:
        console.print(f"[red]no entry {entry_id}[/]")
        raise typer.Exit(1)
    typer.echo(msgspec.json.encode(entry).decode())


@saf_app.command("retry")
def saf_retry(entry_id: int, config: ConfigOption = None) -> None:
    """Put an entry in state exception back in the queue, due now."""
    from xhuma.saf import queue

    if not _database(config).run_sync(queue.retry_entry(entry_id)):
        console.print(f"[red]entry {entry_id} is not in state exception[/]")
        raise typer.Exit(1)
    console.print(f"entry {entry_id} queued again")


@saf_app.command("resolve")
def saf_resolve(
    entry_id: int,
    note: Annotated[str, typer.Option(help="How it was settled (kept with the entry).")],
    config: ConfigOption = None,
) -> None:
    """Close an entry in state exception by hand."""
    from xhuma.saf import queue

    if not note.strip():
        raise typer.BadParameter("must say how it was resolved", param_hint="--note")
    if not _database(config).run_sync(queue.resolve_entry(entry_id, note)):
        console.print(f"[red]entry {entry_id} is not in state exception[/]")
        raise typer.Exit(1)
    console.print(f"entry {entry_id} resolved")


@saf_app.command("stats")
def saf_stats(config: ConfigOption = None) -> None:
    """How many entries are in each state."""
    from xhuma.saf import queue

    for state, n in sorted(_database(config).run_sync(queue.counts()).items()):
        console.print(f"{state:<10} {n}")


@exceptions_app.command("list")
def exceptions_list(
    state: Annotated[str, typer.Option(help="open, or all.")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Reconciliation exceptions: reversals nobody upstream will make, deliveries that stopped."""
    from xhuma.saf import queue

    rows = _database(config).run_sync(queue.list_exceptions(None if state == "all" else state))
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("id", "transaction", "reason", "detail", "state", "created (UTC)")
    for r in rows:
        table.add_row(str(r["id"]), r["tx_id"], r["reason"], r["detail"] or "", r["state"], _when(r["created_us"]))
    console.print(table)


@simulate_app.command("fleet")
def simulate_fleet(
    port: Annotated[int, typer.Option(help="Port to listen on; each provider has its own base path.")] = 9100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
    config_out: Annotated[
        Path | None, typer.Option(help="Write the switch's [[providers]] for this fleet to this file.")
    ] = None,
) -> None:
    """The ten PPU providers xhuma supports, each with its own coverage, capabilities and latency."""
    from xhuma.httpserver import run_asgi
    from xhuma.simulators.ppu import build_fleet_app, fleet_configs, fleet_switch_config

    configs = fleet_configs(seed)
    base_url = f"http://{host}:{port}"
    if config_out is not None:
        config_out.write_text(fleet_switch_config(configs, base_url))
    for config in configs:
        console.print(f"{config.name:<12} {base_url}/{config.name}/prepaidutility/v3", markup=False)
    run_asgi(build_fleet_app(configs), host, port)


# --- routing ---------------------------------------------------------------------------------


@routing_app.command("table")
def routing_table(
    meter: Annotated[str | None, typer.Option(help="One meter only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """What each provider said about each meter (supported, not_supported, unconfirmed)."""
    from xhuma.routing import contracts

    rows = _database(config).run_sync(contracts.table(meter))
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("meter", "provider", "status", "municipality", "learned (UTC)")
    for r in rows:
        table.add_row(r["meter_id"], r["provider"], r["status"], r["municipality"] or "", _when(r["learned_us"]))
    console.print(table)


def _routing_change(config: Path | None) -> tuple[Database, frozenset[str]]:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    return _database(config), frozenset(p.name for p in settings.providers)


def _refused(exc: Exception) -> typer.Exit:
    from xhuma.routing.operator import RoutingChangeError

    errors = exc.errors if isinstance(exc, RoutingChangeError) else []
    for error in errors:
        shown = "" if error.invalid_value is None else f" (got {error.invalid_value!r})"
        console.print(f"[red]{error.field}[/red]: {error.error}{shown}", highlight=False)
    console.print("nothing was changed")
    return typer.Exit(2)


ActorOption = Annotated[str, typer.Option(help="Who makes the change (kept in the audit log).")]


@routing_app.command("prefer")
def routing_prefer(
    municipality: Annotated[str, typer.Argument(help="As learned from lookups, e.g. 'City of Cape Town Electricity'.")],
    providers: Annotated[str, typer.Option(help="Providers in order of preference, comma-separated.")] = "",
    exclude: Annotated[str, typer.Option(help="Providers never to use here, comma-separated.")] = "",
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Set (or with no providers, clear) a municipality's preferred and excluded providers."""
    from xhuma.routing import contracts
    from xhuma.routing.operator import RoutingChangeError, preference_change

    db, known = _routing_change(config)
    ranked = [p.strip() for p in providers.split(",") if p.strip()]
    excluded = [p.strip() for p in exclude.split(",") if p.strip()]
    try:
        change = preference_change(municipality, ranked, excluded, known)
    except RoutingChangeError as exc:
        raise _refused(exc) from None
    db.run_sync(contracts.set_preferences([change], actor, "set_preferences"))
    console.print(change.describe(), markup=False)


@routing_app.command("upload")
def routing_upload(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with header municipality,provider,rank (rank: 1.. or excluded).")
    ],
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Replace the preferences of every municipality the file names; the file is checked whole
    first, and nothing changes unless all of it is valid."""
    from xhuma.routing import contracts
    from xhuma.routing.operator import RoutingChangeError, preferences_from_csv

    db, known = _routing_change(config)
    try:
        changes = preferences_from_csv(csv_file.read_text(encoding="utf-8-sig"), known)
    except RoutingChangeError as exc:
        raise _refused(exc) from None
    db.run_sync(contracts.set_preferences(changes, actor, "upload_preferences"))
    for change in changes:
        console.print(change.describe(), markup=False)


@routing_app.command("weights")
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

    db, known = _routing_change(config)
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
        db.run_sync(contracts.set_weights(changes, actor))
    configured = {p.name: p.weight for p in load_settings(config).providers}
    operator = db.run_sync(contracts.weights())
    table = Table("provider", "weight", "set by")
    for name in sorted(configured):
        table.add_row(name, f"{operator.get(name, configured[name]):g}", "operator" if name in operator else "config")
    console.print(table)


@routing_app.command("rebroadcast")
def routing_rebroadcast(
    meter: Annotated[str, typer.Argument(help="The meter to ask every provider about again.")],
    actor: ActorOption = "cli",
    config: ConfigOption = None,
) -> None:
    """Ask every provider about a meter now, and show what they said."""
    from xhuma.routing import contracts
    from xhuma.routing.operator import RoutingChangeError, check_meter_id

    try:
        check_meter_id(meter)
    except RoutingChangeError as exc:
        raise _refused(exc) from None

    async def ask(node: Any) -> None:
        await node.db.run(lambda conn: contracts.note(conn, actor, "rebroadcast", meter))
        await node.switch.lookups.rebroadcast(meter)

    _with_node(config, ask)
    routing_table(meter=meter, as_json=False, config=config)


@routing_app.command("refresh")
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

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def main() -> None:
        node = Node(settings, run_worker=False)
        await node.start()
        try:
            await work(node)
        finally:
            await node.stop()

    asyncio.run(main())


@routing_app.command("preferences")
def routing_preferences(config: ConfigOption = None) -> None:
    """Every municipality's preferences."""
    from xhuma.routing import contracts

    table = Table("municipality", "provider", "rank", "excluded")
    for r in _database(config).run_sync(contracts.preferences()):
        table.add_row(
            r["municipality"],
            r["provider"],
            "" if r["rank"] is None else str(r["rank"]),
            "yes" if r["excluded"] else "",
        )
    console.print(table)


@routing_app.command("audit")
def routing_audit(config: ConfigOption = None) -> None:
    """Who changed routing, and when."""
    from xhuma.routing import contracts

    for r in _database(config).run_sync(contracts.audit()):
        console.print(f"{_when(r['at_us'])} UTC  {r['actor']}  {r['action']}  {r['detail']}", markup=False)


vouchers_app = typer.Typer(help="Digital vouchers issued through the switch.", no_args_is_help=True)
app.add_typer(vouchers_app, name="vouchers")


@vouchers_app.command("exposure")
def vouchers_exposure(
    state: Annotated[str, typer.Option(help="open, resolved, or all.")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Vouchers a provider may have issued that the retailer did not get or undid: what the
    retailer may owe, for mark-up/mark-off reconciliation with the provider."""
    from xhuma.vouchers import store

    rows = _database(config).run_sync(store.exposure(None if state == "all" else state))
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("id", "retail id", "client", "product", "provider", "amount", "voucher", "reason", "state", "since")
    for r in rows:
        amount = f"{r['amount'] / 100:.2f}" if r["amount"] is not None else ""
        table.add_row(
            str(r["id"]),
            r["retail_id"],
            r["client_id"],
            r["product_code"],
            r["provider"],
            amount,
            r["code"] or "(unknown)",
            r["reason"],
            r["state"],
            _when(r["created_us"]),
        )
    console.print(table)
    total = sum(r["amount"] or 0 for r in rows)
    console.print(f"{len(rows)} vouchers, {total / 100:.2f} in all")


@vouchers_app.command("settle")
def vouchers_settle(
    exposure_id: Annotated[int, typer.Argument(help="The exposure's id (from `xhuma vouchers exposure`).")],
    note: Annotated[str, typer.Option(help="How it was settled, e.g. 'marked off with Stellr, ref 123'.")],
    config: ConfigOption = None,
) -> None:
    """Close an exposure once it is marked up or off with the provider."""
    from xhuma.vouchers import store

    if not note.strip():
        raise typer.BadParameter("say how it was settled", param_hint="--note")
    if not _database(config).run_sync(store.settle_exposure(exposure_id, note)):
        typer.echo(f"no open exposure {exposure_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"exposure {exposure_id} settled")


catalogue_app = typer.Typer(help="The voucher product catalogue of each client.", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")
ClientOption = Annotated[str, typer.Option("--client", help="The client id whose catalogue it is.")]


@catalogue_app.command("import")
def catalogue_import(
    path: Annotated[Path, typer.Argument(help="A .csv (one row per provider mapping) or .json file.")],
    client: ClientOption,
    replace: Annotated[bool, typer.Option(help="Remove the client's products the file does not list.")] = False,
    actor: Annotated[str, typer.Option(help="Who makes the change, for the change log.")] = "cli",
    config: ConfigOption = None,
) -> None:
    """Import products, checked whole first: one bad line and nothing is applied."""
    from xhuma.vouchers import catalogue, catalogue_store

    text = path.read_text(encoding="utf-8")
    try:
        products = catalogue.products_from_json(text) if path.suffix == ".json" else catalogue.products_from_csv(text)
    except catalogue.CatalogueError as exc:
        for p in exc.problems:
            typer.echo(f"{path}: {p.where}: {p.field}: {p.error}", err=True)
        raise typer.Exit(1) from None
    done = _database(config).run_sync(catalogue_store.import_products(client, products, actor, replace=replace))
    typer.echo(
        f"{client}: {done['added']} added, {done['changed']} changed, {done['removed']} removed; "
        f"catalogue version {done['version']}"
    )


@catalogue_app.command("list")
def catalogue_list(
    client: ClientOption,
    as_csv: Annotated[bool, typer.Option("--csv", help="In the import layout.")] = False,
    config: ConfigOption = None,
) -> None:
    """The client's products and the providers that issue each."""
    from xhuma.vouchers import catalogue, catalogue_store

    products = _database(config).run_sync(catalogue_store.products(client))
    if as_csv:
        typer.echo(catalogue.to_csv(products), nl=False)
        return
    table = Table("code", "name", "type", "value", "valid", "providers (by rank)")
    for p in products:
        value = f"{p.amount / 100:.2f}" if p.fixed_value and p.amount is not None else ""
        if not p.fixed_value and p.min_amount is not None and p.max_amount is not None:
            value = f"{p.min_amount / 100:.2f}-{p.max_amount / 100:.2f}"
        valid = f"{p.valid_from or ''}..{p.valid_to or ''}" if p.valid_from or p.valid_to else "always"
        issuers = ", ".join(f"{m.provider}:{m.provider_product_code}" for m in p.mappings)
        table.add_row(p.code, p.name, p.product_type, value, valid, issuers)
    console.print(table)


@catalogue_app.command("remove")
def catalogue_remove(
    product_code: Annotated[str, typer.Argument(help="The client's product code.")],
    client: ClientOption,
    actor: Annotated[str, typer.Option(help="Who makes the change.")] = "cli",
    config: ConfigOption = None,
) -> None:
    from xhuma.vouchers import catalogue_store

    if not _database(config).run_sync(catalogue_store.remove_product(client, product_code, actor)):
        typer.echo(f"{client} has no product {product_code}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{client}: {product_code} removed")


@catalogue_app.command("changes")
def catalogue_changes(
    client: ClientOption,
    since: Annotated[int, typer.Option(help="Catalogue version to list changes after.")] = 0,
    config: ConfigOption = None,
) -> None:
    """The change log: what was added, changed or removed after a version."""
    from xhuma.vouchers import catalogue_store

    for change in _database(config).run_sync(catalogue_store.changes_since(client, since)):
        when = _when(change["atUs"])
        typer.echo(
            f"{change['version']:>6}  {when}  {change['action']:<8} {change['productCode']}  by {change['actor']}"
        )


eft_app = typer.Typer(help="Regulated payments: EFT files from the clearing house.", no_args_is_help=True)
app.add_typer(eft_app, name="eft")


@eft_app.command("check")
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
        f"credits {summary.credit_total / 100:.2f}, debits {summary.debit_total / 100:.2f}; "
        f"sha256 {summary.content_hash}"
    )


@eft_app.command("ingest")
def eft_ingest(
    path: Annotated[Path, typer.Argument(help="An inbound PAYMENTS or SEC file.")],
    config: ConfigOption = None,
) -> None:
    """Take a file in: refused whole if it was seen before or any record is bad, else every
    transaction is stored in one commit."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from xhuma.eft.intake import ingest

    if not path.is_file():
        typer.echo(f"{path}: no such file", err=True)
        raise typer.Exit(2)
    db = _database(config)
    settings = load_settings(config)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"checking {path.name}", total=path.stat().st_size)
        result = ingest(
            db.engine, path, progress=lambda n: bar.advance(task, n), debit_release=settings.eft.debit_release
        )
    if result.state != "accepted":
        refusal = "duplicate" if result.state == "redelivered" else "rejected"
        typer.echo(f"{path.name}: {refusal} (file {result.file_id}): {result.reason}; nothing was applied")
        raise typer.Exit(1)
    assert result.summary is not None
    typer.echo(
        f"{path.name}: accepted as file {result.file_id}: {result.summary.transactions} transactions in "
        f"{len(result.summary.set_keys)} sets, transmission {result.summary.transmission_key}"
    )


@eft_app.command("files")
def eft_files(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Files offered to intake, newest first, with why any was refused."""
    from xhuma.eft.intake import files

    rows = files(_database(config).engine)
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("id", "name", "transmission", "type", "state", "transactions", "credits", "debits", "received", "why")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["name"],
            r["transmission_key"] or "",
            r["content_type"] or "",
            r["state"],
            str(r["transactions"]),
            f"{r['credit_total'] / 100:.2f}",
            f"{r['debit_total'] / 100:.2f}",
            _when(r["received_us"]),
            r["error"] or "",
        )
    console.print(table)


@eft_app.command("transactions")
def eft_transactions(
    file_id: Annotated[int, typer.Option("--file", help="The file's id (from `xhuma eft files`).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """The credits, debits and corrections of an accepted file."""
    from xhuma.eft.intake import transactions

    rows = transactions(_database(config).engine, file_id)
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("line", "kind", "user", "seq", "action date", "amount", "homing account", "name", "state", "reason")
    for r in rows:
        table.add_row(
            str(r["line"]),
            r["kind"],
            r["user_code"],
            str(r["sequence_number"]),
            r["action_date"],
            f"{r['amount_cents'] / 100:.2f}",
            f"{r['homing_branch']:06d} {r['homing_account']}",
            r["homing_account_name"],
            r["state"],
            r["reason_code"] or "",
        )
    console.print(table)


@simulate_app.command("bank")
def simulate_bank(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8095,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    xhuma_url: Annotated[str, typer.Option(help="Where to send status reports.")] = "http://127.0.0.1:8080",
    username: Annotated[str, typer.Option(help="The bank's credential at xhuma (role bank).")] = "bank",
    password: Annotated[str, typer.Option(help="Its password.")] = "bank-pw",
    nack_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of deliveries answered 503.")] = 0.0,
    hang_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share never answered.")] = 0.0,
    reject_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share rejected (an unpaid).")] = 0.0,
    silent_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share acknowledged, never reported.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
) -> None:
    """A homing bank taking inbound EFT credits and debits and reporting outcomes back."""
    from xhuma.simulators.bank import BankConfig, run

    run(
        BankConfig(
            xhuma_url=xhuma_url,
            username=username,
            password=password,
            nack_rate=nack_rate,
            hang_rate=hang_rate,
            reject_rate=reject_rate,
            silent_rate=silent_rate,
            seed=seed,
        ),
        host,
        port,
    )


@eft_app.command("unpaids")
def eft_unpaids(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
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

    db = _database(config)
    if write is not None:
        today = datetime.now(UTC).date()
        written = write_outbox(db.engine, write, today=today, sender=sender, destination=destination)
        typer.echo(f"wrote {written}" if written else "no new unpaids")
        return
    rows = unpaids(db.engine)
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("file", "line", "kind", "user", "seq", "action date", "amount", "reason", "why", "output file")
    for r in rows:
        table.add_row(
            str(r["file_id"]),
            str(r["line"]),
            r["kind"],
            r["user_code"],
            str(r["sequence_number"]),
            r["action_date"],
            f"{r['amount_cents'] / 100:.2f}",
            r["reason_code"] or "",
            r["reason_text"] or "",
            r["unpaid_file"] or "(next)",
        )
    console.print(table)


@eft_app.command("secfail")
def eft_secfail(
    write: Annotated[Path, typer.Option("--write", help="Outbox to write the next SECFAIL file to.")],
    sender: Annotated[int, typer.Option(help="Our sender code in outbound files.")] = 45001,
    destination: Annotated[int, typer.Option(help="The clearing house's code.")] = 9000,
    config: ConfigOption = None,
) -> None:
    """Write the system error corrections that could not be applied as the next SECFAIL file."""
    from xhuma.eft.outbox import write_secfail_outbox

    today = datetime.now(UTC).date()
    written = write_secfail_outbox(_database(config).engine, write, today=today, sender=sender, destination=destination)
    typer.echo(f"wrote {written}" if written else "no new failed corrections")


@eft_app.command("exceptions")
def eft_exceptions(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Open reconciliation exceptions of inbound EFT: messages the bank did not acknowledge or
    report on before the window closed, or refused outright (the queue stopped them)."""
    from xhuma.eft.intake import exceptions

    rows = exceptions(_database(config).engine)
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    table = Table("id", "reason", "file", "line", "kind", "user", "seq", "amount", "message", "since", "detail")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["reason"],
            str(r["file_id"]),
            str(r["line"]),
            r["kind"],
            r["user_code"],
            str(r["sequence_number"]),
            f"{r['amount_cents'] / 100:.2f}",
            r["message_id"] or "",
            _when(r["created_us"]),
            r["detail"] or "",
        )
    console.print(table)
