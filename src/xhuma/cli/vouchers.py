"""`xhuma vouchers` (vouchers issued through the switch, and what a retailer may owe for them)
and `xhuma catalogue` (each client's voucher products and the providers that issue them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xhuma.cli.common import ConfigOption, JsonOption, console, database, money, show_rows, when
from xhuma.security import operator_actions
from xhuma.security.audit import cli_actor

if TYPE_CHECKING:
    from xhuma.vouchers.catalogue import Product

app = typer.Typer(help="Digital vouchers issued through the switch.", no_args_is_help=True)
catalogue_app = typer.Typer(help="The voucher product catalogue of each client.", no_args_is_help=True)
ClientOption = Annotated[str, typer.Option("--client", help="The client id whose catalogue it is.")]


@app.command("exposure")
def vouchers_exposure(
    state: Annotated[str, typer.Option(help="open, resolved, or all.")] = "open",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Vouchers a provider may have issued that the retailer did not get or undid: what the
    retailer may owe, for mark-up/mark-off reconciliation with the provider."""
    from xhuma.vouchers import store

    rows = database(config).run_sync(store.exposure(None if state == "all" else state))
    show_rows(
        rows,
        [
            ("id", "id"),
            ("retail id", "retail_id"),
            ("client", "client_id"),
            ("product", "product_code"),
            ("provider", "provider"),
            ("amount", lambda r: money(r["amount"])),
            ("voucher", lambda r: r["code"] or "(unknown)"),
            ("reason", "reason"),
            ("state", "state"),
            ("since", lambda r: when(r["created_us"])),
        ],
        as_json=as_json,
    )
    if as_json:
        return
    total = sum(r["amount"] or 0 for r in rows)
    console.print(f"{len(rows)} vouchers, {money(total)} in all")


@app.command("settle")
def vouchers_settle(
    exposure_id: Annotated[int, typer.Argument(help="The exposure's id (from `xhuma vouchers exposure`).")],
    note: Annotated[str, typer.Option(help="How it was settled, e.g. 'marked off with Stellr, ref 123'.")],
    config: ConfigOption = None,
) -> None:
    """Close an exposure once it is marked up or off with the provider."""

    if not note.strip():
        raise typer.BadParameter("say how it was settled", param_hint="--note")
    if not database(config, migrate_schema=True).run_sync(
        operator_actions.settle_exposure(cli_actor(), exposure_id, note)
    ):
        typer.echo(f"no open exposure {exposure_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"exposure {exposure_id} settled")


@catalogue_app.command("import")
def catalogue_import(
    path: Annotated[Path, typer.Argument(help="A .csv (one row per provider mapping) or .json file.")],
    client: ClientOption,
    replace: Annotated[bool, typer.Option(help="Remove the client's products the file does not list.")] = False,
    actor: Annotated[str, typer.Option(help="Who makes the change, for the change log.")] = "cli",
    config: ConfigOption = None,
) -> None:
    """Import products, checked whole first: one bad line and nothing is applied."""
    from xhuma.vouchers import catalogue

    text = path.read_text(encoding="utf-8")
    try:
        products = catalogue.products_from_json(text) if path.suffix == ".json" else catalogue.products_from_csv(text)
    except catalogue.CatalogueError as exc:
        for p in exc.problems:
            typer.echo(f"{path}: {p.where}: {p.field}: {p.error}", err=True)
        raise typer.Exit(1) from None
    done = database(config, migrate_schema=True).run_sync(
        operator_actions.import_products(cli_actor(actor), client, products, replace=replace)
    )
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

    products = database(config).run_sync(catalogue_store.products(client))
    if as_csv:
        typer.echo(catalogue.to_csv(products), nl=False)
        return
    show_rows(
        [{"product": p, "value": _value(p), "valid": _validity(p)} for p in products],
        [
            ("code", lambda r: r["product"].code),
            ("name", lambda r: r["product"].name),
            ("type", lambda r: r["product"].product_type),
            ("value", "value"),
            ("valid", "valid"),
            (
                "providers (by rank)",
                lambda r: ", ".join(f"{m.provider}:{m.provider_product_code}" for m in r["product"].mappings),
            ),
        ],
        as_json=False,
    )


def _value(product: Product) -> str:
    if product.fixed_value:
        return money(product.amount)
    if product.min_amount is not None and product.max_amount is not None:
        return f"{money(product.min_amount)}-{money(product.max_amount)}"
    return ""


def _issuers(product: Product) -> str:
    return ", ".join(f"{m.provider}:{m.provider_product_code}" for m in product.mappings)


def _validity(product: Product) -> str:
    if product.valid_from or product.valid_to:
        return f"{product.valid_from or ''}..{product.valid_to or ''}"
    return "always"


@catalogue_app.command("remove")
def catalogue_remove(
    product_code: Annotated[str, typer.Argument(help="The client's product code.")],
    client: ClientOption,
    actor: Annotated[str, typer.Option(help="Who makes the change.")] = "cli",
    config: ConfigOption = None,
) -> None:

    if not database(config, migrate_schema=True).run_sync(
        operator_actions.remove_product(cli_actor(actor), client, product_code)
    ):
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

    for change in database(config).run_sync(catalogue_store.changes_since(client, since)):
        at = when(change["atUs"])
        typer.echo(f"{change['version']:>6}  {at}  {change['action']:<8} {change['productCode']}  by {change['actor']}")
