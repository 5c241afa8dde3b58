"""`xhuma serve`, `xhuma demo` and `xhuma db upgrade`: the commands that run the switch or
prepare its database."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from xhuma import logs
from xhuma.cli.common import ConfigOption, console, database, serving, settings
from xhuma.config import Settings, tls_files
from xhuma.tls import TlsError, TlsFiles

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the retail API.")] = 8080,
    drain_seconds: Annotated[
        float | None,
        typer.Option(help="On SIGTERM, how long requests in flight may finish [default: switch.drain_seconds, 10]."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS only, with this PEM certificate chain [default: tls.cert].")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM private key [default: tls.key].")] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(help="Mutual TLS: require a client certificate issued by this CA (PEM) [default: tls.client_ca]."),
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="text, or json: one JSON object a line, with each transaction's correlation id.")
    ] = "text",
) -> None:
    """Run the switch: the retail API (PPU v3), health and OpenAPI. SIGTERM, SIGINT or SIGHUP stop
    it: no new connections, requests in flight finish, the worker settles, exit status 0. With
    TLS, SIGHUP instead re-reads the certificate, key and client CA for new connections."""
    from xhuma.api.app import serve as run_server

    if log_format not in logs.FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(logs.FORMATS)}", param_hint="--log-format")
    logs.configure(log_format)
    chosen = settings(config)
    if drain_seconds is not None:
        chosen = dataclasses.replace(chosen, drain_seconds=drain_seconds)
    if tls_cert or tls_key or client_ca:
        chosen = dataclasses.replace(chosen, tls=_tls(chosen, tls_cert, tls_key, client_ca))
    serving("serve", lambda: run_server(chosen, host, port))


def _tls(chosen: Settings, cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    """The command line's TLS files over the configuration's, checked; one line and exit 2 if not usable."""
    current = chosen.tls
    try:
        return tls_files(
            cert or (current.cert if current else None),
            key or (current.key if current else None),
            client_ca or (current.client_ca if current else None),
        )
    except TlsError as exc:
        option = {"cert": "--tls-cert", "key": "--tls-key", "client_ca": "--client-ca"}[exc.which]
        typer.echo(f"configuration error: {option}: {exc}", err=True)
        raise typer.Exit(2) from None


def demo(
    port: Annotated[int, typer.Option(help="Port of the switch's retail API.")] = 8080,
    simulator_port: Annotated[int, typer.Option(help="Port of the simulated PPU provider.")] = 8090,
    voucher_port: Annotated[int, typer.Option(help="Port of the simulated voucher provider.")] = 8091,
    once: Annotated[bool, typer.Option(help="Stop after the sample flow instead of serving on.")] = False,
    tls: Annotated[
        bool, typer.Option(help="Serve HTTPS with a throw-away CA and certificate made under var/tls/.")
    ] = False,
) -> None:
    """Start simulated providers and the switch, run a purchase and a voucher through them, keep serving."""
    from xhuma.demo import run_demo

    raise typer.Exit(run_demo(port, simulator_port, voucher_port, once=once, tls=tls))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the schema to the newest revision."""
    db = database(config, migrate_schema=True)
    console.print(f"schema is current on {db.engine.url.render_as_string(hide_password=True)}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(demo)
