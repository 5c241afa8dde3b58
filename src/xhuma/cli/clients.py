"""`xhuma clients`: API credentials, each bound to one client id."""

from __future__ import annotations

from typing import Annotated

import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, show_rows

app = typer.Typer(help="API client credentials (HTTP Basic), each bound to one client id.", no_args_is_help=True)


@app.command("add")
def clients_add(
    username: Annotated[str, typer.Option(help="Basic-auth user name.")],
    password: Annotated[str, typer.Option(help="Basic-auth password (stored as an argon2 hash).")],
    client_id: Annotated[
        str, typer.Option("--client-id", help="The client institution id this credential may act for.")
    ],
    name: Annotated[str | None, typer.Option(help="A readable name.")] = None,
    role: Annotated[
        str,
        typer.Option(
            help="retail (the retail interfaces), admin (the /admin API), bank (EFT status reports), "
            "finance (finance proposals) or approver (finance proposals and approving others').",
        ),
    ] = "retail",
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="A source network it may be used from, in CIDR form (repeat; none: anywhere)."),
    ] = None,
    cert_subject: Annotated[
        str | None,
        typer.Option(help='The client certificate subject it is bound to under mutual TLS, e.g. "CN=till-1,O=Shop".'),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a credential, or replace the password and binding of an existing one."""
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor
    from xhuma.security.credentials import ROLES, parse_networks

    if not username or ":" in username:
        raise typer.BadParameter("must be non-empty and contain no ':'", param_hint="--username")
    if not password:
        raise typer.BadParameter("must not be empty", param_hint="--password")
    if not client_id or len(client_id) > 40:
        raise typer.BadParameter("must be 1 to 40 characters", param_hint="--client-id")
    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    try:
        networks = parse_networks(allow or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--allow") from None
    if cert_subject is not None and not 0 < len(cert_subject) <= 200:
        raise typer.BadParameter("must be 1 to 200 characters", param_hint="--cert-subject")
    db = database(config, migrate_schema=True)
    db.run_sync(
        operator_actions.add_client(
            cli_actor(),
            username,
            password,
            client_id,
            name or username,
            role,
            networks=networks,
            cert_subject=cert_subject,
        )
    )
    where = f" from {', '.join(map(str, networks))}" if networks else ""
    console.print(f"client [bold]{username}[/] may act for client id [bold]{client_id}[/]{where}")


@app.command("list")
def clients_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List credentials (never their secrets)."""
    from xhuma.security.credentials import list_clients

    rows = [
        {
            "username": c.username,
            "client_id": c.client_id,
            "name": c.name,
            "role": c.role,
            "enabled": c.enabled,
            "networks": [str(n) for n in c.networks],
            "cert_subject": c.cert_subject,
        }
        for c in database(config).run_sync(list_clients())
    ]
    show_rows(
        rows,
        [
            ("username", "username"),
            ("client id", "client_id"),
            ("name", "name"),
            ("role", "role"),
            ("networks", lambda r: ", ".join(r["networks"]) or "any"),
            ("enabled", lambda r: "yes" if r["enabled"] else "no"),
        ],
        as_json=as_json,
    )
