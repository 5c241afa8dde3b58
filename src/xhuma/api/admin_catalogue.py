"""Operator control of the voucher catalogue under /admin/catalogue: list, import (JSON or
CSV, checked whole; nothing applied when any of it is bad), remove, and the change log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.node import Node
from xhuma.security import operator_actions
from xhuma.validation import whole_number
from xhuma.vouchers import catalogue, catalogue_store

MAX_IMPORT_BYTES = 4 * 1024 * 1024


def _refused(problems: list[catalogue.CatalogueProblem], status: int = 400) -> Response:
    return json_reply({"error": "nothing was changed", "errors": [asdict(p) for p in problems]}, status)


def _shown(product: catalogue.Product) -> dict[str, Any]:
    out = asdict(product)
    out["valid_from"] = product.valid_from.isoformat() if product.valid_from else None
    out["valid_to"] = product.valid_to.isoformat() if product.valid_to else None
    return out


def catalogue_routes(node: Node) -> list[Route]:
    async def listed(request: Request) -> Response:
        products = await node.db.run(catalogue_store.products(request.path_params["client_id"]))
        return json_reply([_shown(p) for p in products])

    async def imported(request: Request, parse: Any) -> Response:
        try:
            body = await read_body(request, MAX_IMPORT_BYTES)
        except BodyTooLarge:
            return _refused([catalogue.CatalogueProblem("$", "body", f"larger than {MAX_IMPORT_BYTES} bytes")], 413)
        try:
            products = parse(body.decode("utf-8"))
        except UnicodeDecodeError:
            return _refused([catalogue.CatalogueProblem("$", "body", "not UTF-8 text")])
        except catalogue.CatalogueError as exc:
            return _refused(exc.problems)
        replace = request.query_params.get("replace", "false").lower() in ("1", "true", "yes")
        done = await node.db.run(
            operator_actions.import_products(
                request.state.operator, request.path_params["client_id"], products, replace=replace
            )
        )
        return json_reply(done)

    async def import_json(request: Request) -> Response:
        return await imported(request, catalogue.products_from_json)

    async def import_csv(request: Request) -> Response:
        return await imported(request, catalogue.products_from_csv)

    async def removed(request: Request) -> Response:
        client_id, code = request.path_params["client_id"], request.path_params["code"]
        if not await node.db.run(operator_actions.remove_product(request.state.operator, client_id, code)):
            return json_reply({"error": f"{client_id} has no product {code}", "field": "code"}, 404)
        return json_reply({"removed": code})

    async def changes(request: Request) -> Response:
        since = whole_number(request.query_params.get("since", "0"))
        if since is None:
            return json_reply({"error": "since must be a catalogue version number", "field": "since"}, 400)
        client_id = request.path_params["client_id"]
        found = await node.db.run(catalogue_store.changes_since(client_id, since))
        version = await node.db.run(catalogue_store.catalogue_version(client_id))
        return json_reply({"version": version, "changes": found})

    base = "/admin/catalogue/{client_id}"
    return [
        Route(base + "/products", listed, methods=["GET"]),
        Route(base + "/products", import_json, methods=["PUT"]),
        Route(base + "/products.csv", import_csv, methods=["POST"]),
        Route(base + "/products/{code}", removed, methods=["DELETE"]),
        Route(base + "/changes", changes, methods=["GET"]),
    ]
