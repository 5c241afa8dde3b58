"""The `xhuma` command: one module per command group, each a thin layer over the capability it
operates (the logic lives in that capability's package)."""

from __future__ import annotations

import typer

from xhuma.cli import (
    audit,
    clients,
    eft,
    finance,
    recon,
    reports,
    routing,
    saf,
    server,
    simulate,
    tokens,
    transactions,
    vouchers,
)
from xhuma.security.masking import install_log_masking

app = typer.Typer(help="xhuma: a payments transaction switch.", no_args_is_help=True, add_completion=False)
server.register(app)
app.add_typer(clients.app, name="clients")
app.add_typer(transactions.app, name="tx")
app.add_typer(simulate.app, name="simulate")
app.add_typer(server.db_app, name="db")
app.add_typer(saf.app, name="saf")
app.add_typer(saf.exceptions_app, name="exceptions")
app.add_typer(routing.app, name="routing")
app.add_typer(vouchers.app, name="vouchers")
app.add_typer(vouchers.catalogue_app, name="catalogue")
app.add_typer(eft.app, name="eft")
app.add_typer(audit.app, name="audit")
app.add_typer(tokens.app, name="tokens")
app.add_typer(recon.app, name="recon")
app.add_typer(reports.app, name="report")
app.add_typer(finance.app, name="finance")


@app.callback()
def _every_command() -> None:
    """xhuma: a payments transaction switch."""
    install_log_masking()  # whatever a command logs (the worker's tracebacks say), masked


__all__ = ["app"]
