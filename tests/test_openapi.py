"""The OpenAPI document describes every route the server answers (in process: no port needed)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from xhuma.api.app import create_app
from xhuma.api.openapi import build_openapi
from xhuma.config import Settings


def test_every_route_the_server_answers_is_in_the_openapi_document(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    served = {
        (method.lower(), route.path.rstrip("/"))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    document = build_openapi()
    described = {(method, path) for path, methods in document["paths"].items() for method in methods}
    assert served and served <= described, served - described
    assert described <= served, described - served


def test_every_reference_in_the_document_resolves() -> None:
    document = build_openapi()
    schemas = document["components"]["schemas"]

    def refs(value: object) -> list[str]:
        if isinstance(value, dict):
            found = [value["$ref"]] if "$ref" in value else []
            return found + [r for inner in value.values() for r in refs(inner)]
        if isinstance(value, list):
            return [r for inner in value for r in refs(inner)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_path_ids_document_the_rule_that_they_equal_the_body_id() -> None:
    purchase = build_openapi()["paths"]["/prepaidutility/v3/tokenPurchases/{id}"]["post"]
    (parameter,) = purchase["parameters"]
    assert "body's `id`" in parameter["description"]
    assert "401" in purchase["responses"]
