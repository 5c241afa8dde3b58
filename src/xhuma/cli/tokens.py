"""`xhuma tokens`: OAuth2 access tokens, revoked one by one or all of a user's, and the key
that signs them rotated."""

from __future__ import annotations

from typing import Annotated

import typer

from xhuma.cli.common import ActorOption, ConfigOption, database, settings

app = typer.Typer(help="OAuth2 access tokens: revoke them, rotate the signing key.", no_args_is_help=True)


@app.command("revoke")
def tokens_revoke(
    jti: Annotated[str | None, typer.Argument(help="The token's jti (its id).")] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Revoke every token issued to this username until now.")
    ] = None,
    actor: ActorOption = "",
    config: ConfigOption = None,
) -> None:
    """Refuse a token from now on, on every node (or all of a user's tokens issued so far)."""
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor

    if (jti is None) == (client is None):
        raise typer.BadParameter("give a token's jti or --client USERNAME, not both")
    lifetime = settings(config).token_seconds
    db = database(config, migrate_schema=True)
    if jti is not None:
        if not 0 < len(jti) <= 100:
            raise typer.BadParameter("1 to 100 characters", param_hint="JTI")
        db.run_sync(operator_actions.revoke_token(cli_actor(actor), jti, lifetime))
        typer.echo(f"token {jti} revoked")
    else:
        assert client is not None
        db.run_sync(operator_actions.revoke_tokens_of(cli_actor(actor), client, lifetime))
        typer.echo(f"every token of {client} issued until now revoked")


@app.command("rotate-key")
def tokens_rotate_key(actor: ActorOption = "", config: ConfigOption = None) -> None:
    """Sign new tokens with a new key; the old one verifies until the tokens it signed expire."""
    from xhuma.security import operator_actions
    from xhuma.security.audit import cli_actor

    kid = database(config, migrate_schema=True).run_sync(operator_actions.rotate_signing_key(cli_actor(actor)))
    typer.echo(f"new signing key {kid}")
