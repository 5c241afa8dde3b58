"""What every command group shares: the console, the --config option, opening the database, and
one way to print rows as a table or as JSON lines.

Commands run on the main thread of a short-lived process; a command that changes data opens the
database with `migrate=True` (the schema is brought up to date first, as `xhuma db upgrade` does);
a reading command never changes the schema and says so when it is behind."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from xhuma.config import ConfigError, Settings, load_settings
from xhuma.domain.currencies import money as money  # re-exported: the commands print amounts with it
from xhuma.httpserver import CannotListen
from xhuma.storage.db import Database, migrate, schema_revision

console = Console()

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file (or XHUMA_CONFIG).")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
ActorOption = Annotated[str, typer.Option(help="Who makes the change (kept in the audit log).")]

Row = Mapping[str, Any]
Column = tuple[str, str | Callable[[Row], object]]
"""A table column: its header, and the row's key or a function of the row giving the cell."""


def settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)  # one line; nothing has started
        raise typer.Exit(2) from None


def database(config: Path | None, *, migrate_schema: bool = False) -> Database:
    """Open the configured database. Reading commands leave the schema alone and stop with a
    clear message when it is not the newest; changing commands migrate it first."""
    url = make_url(settings(config).database_url)
    file = url.database if url.get_backend_name() == "sqlite" and url.database != ":memory:" else None
    if not migrate_schema and file and not Path(file).exists():
        typer.echo(f"no database at {file}: run `xhuma db upgrade` (or `xhuma serve`) first", err=True)
        raise typer.Exit(1)
    db = Database(url.render_as_string(hide_password=False))
    if migrate_schema:
        migrate(db.engine)
        return db
    current, newest = schema_revision(db.engine)
    if current != newest:
        where = db.engine.url.render_as_string(hide_password=True)
        found = "no xhuma schema" if current is None else f"schema revision {current}"
        typer.echo(f"{where} has {found}, not the newest ({newest}): run `xhuma db upgrade`", err=True)
        raise typer.Exit(1)
    return db


def serving(command: str, run: Callable[[], None]) -> None:
    """Run a server until it is told to stop; a port it cannot bind ends the command at once
    with one line naming the port (and nothing else has been touched yet)."""
    try:
        run()
    except CannotListen as exc:
        typer.echo(f"xhuma {command}: {exc}", err=True)
        raise typer.Exit(1) from None


def when(us: int | None) -> str:
    """A journal time (microseconds since the epoch) as UTC, to the millisecond."""
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_time(value: str | None, option: str) -> int | None:
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


_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_line(row: Row) -> str:
    """One JSON object on one line. JSON may carry NEL, U+2028 and U+2029 raw inside strings,
    and line readers split on them; escaped, a refused message's body cannot break a line."""
    text = msgspec.json.encode(row).decode()
    for raw, escaped in _LINE_BREAKS.items():
        text = text.replace(raw, escaped)
    return text


def show_rows(rows: Iterable[Row], columns: Sequence[Column], *, as_json: bool) -> None:
    """Print rows as one JSON object per line (every field) or as a table of the given columns."""
    if as_json:
        for row in rows:
            typer.echo(json_line(row))
        return
    table = Table(*(header for header, _ in columns))
    for row in rows:
        cells = (row[cell] if isinstance(cell, str) else cell(row) for _, cell in columns)
        table.add_row(*("" if value is None else str(value) for value in cells))
    console.print(table)
