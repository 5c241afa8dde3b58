"""The OpenAPI document of every HTTP API: the retail APIs (PPU v3 and SUV v1), built from their
operation tables and wire structs, and the operator and bank routes (`openapi_operator`)."""

from __future__ import annotations

from typing import Any

import msgspec

from xhuma.api import openapi_operator
from xhuma.ppu import operations as ppu_ops
from xhuma.ppu import wire as ppu_wire
from xhuma.vouchers import operations as suv_ops
from xhuma.vouchers import wire as suv_wire

ERROR_STATUSES = ("400", "404", "500", "501", "503", "504")
SUV_PREFIX = "Suv"
"""SUV's structs share names with PPU's (ErrorDetail, Amounts): its schemas are named Suv*."""

UNAUTHORIZED = {"description": "no credentials, or credentials that are not valid (AUTHENTICATION_ERROR)"}
TOO_LARGE = {"description": "the body is larger than the server's limit"}
FORBIDDEN = {
    "description": "`client.id` is not the authenticated credential's client, the credential lacks the route's "
    "scope, or it is used from outside its networks"
}
LOCKED = {"description": "the username is locked after five failed logins within a minute"}
NOT_JSON = {"description": "a Content-Type that is not JSON (none at all is taken as JSON)"}
PATH_ID_RULE = "Must equal the body's `id`; a different one is refused with 400 FORMAT_ERROR naming `id`."
REQUEST_ID_RULE = "Must equal the body's `requestId`; a different one is refused with 400 FORMAT_ERROR."


def build_openapi() -> dict[str, Any]:
    ppu_paths, ppu_schemas = _ppu()
    suv_paths, suv_schemas = _suv()
    operator_paths, operator_schemas = openapi_operator.operator_paths()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "xhuma: PPU v3 and SUV v1 retail APIs, operator API, bank status reports",
            "version": "3.13.0",
        },
        "paths": {**ppu_paths, **suv_paths, **operator_paths},
        "components": {
            "schemas": {**ppu_schemas, **suv_schemas, **operator_schemas},
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


def _ppu() -> tuple[dict[str, Any], dict[str, Any]]:
    models = {op.request_model for op in ppu_ops.ALL} | {op.response_model for op in ppu_ops.ALL if op.response_model}
    models.add(ppu_wire.ErrorDetail)
    _, schemas = msgspec.json.schema_components(
        sorted(models, key=lambda m: m.__name__), ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {}
    for op in ppu_ops.ALL:
        params = [
            _path_parameter(name, REQUEST_ID_RULE if name == "requestId" else _id_rule(op.path))
            for name in ("requestId", "id")
            if "{" + name + "}" in op.path
        ]
        paths[ppu_ops.BASE_PATH + op.path] = {
            "post": {
                "operationId": op.name,
                "summary": op.summary,
                "parameters": params,
                "requestBody": {"required": True, "content": _json(_ref(op.request_model.__name__))},
                "responses": {
                    str(op.success_status): {"description": "success", "content": _json(_ref(op.response_model))},
                    **_errors(ppu_wire.ErrorDetail.__name__),
                },
            }
        }
    return paths, schemas


def _id_rule(path: str) -> str:
    if path.endswith("/retry"):
        return "The id of the original request; the body may carry a new id for the retry itself."
    return PATH_ID_RULE


def _suv() -> tuple[dict[str, Any], dict[str, Any]]:
    models = {op.request_model for op in suv_ops.ALL if op.request_model} | {suv_wire.ErrorDetail}
    _, found = msgspec.json.schema_components(
        sorted(models, key=lambda m: m.__name__), ref_template="#/components/schemas/" + SUV_PREFIX + "{name}"
    )
    schemas = {SUV_PREFIX + name: schema for name, schema in found.items()}
    error = SUV_PREFIX + suv_wire.ErrorDetail.__name__
    paths: dict[str, Any] = {}
    for op in suv_ops.ALL:
        if op.request_model is None:
            continue
        params = [_path_parameter("provisionId", _id_rule(op.path))] if "{provisionId}" in op.path else []
        model = SUV_PREFIX + op.request_model.__name__
        # A conforming voucher server answers with the request copied and its own fields added.
        answer = "the request echoed with the provider's fields" if op.success_status == 201 else "the advice echoed"
        paths[suv_ops.BASE_PATH + op.path] = {
            "post": {
                "operationId": op.name,
                "summary": op.name,
                "parameters": params,
                "requestBody": {"required": True, "content": _json(_ref(model))},
                "responses": {
                    str(op.success_status): {"description": answer, "content": _json(_ref(model))},
                    **_errors(error),
                },
            }
        }
    paths[suv_ops.BASE_PATH + "/vouchers"]["get"] = _suv_get(
        "lookupVoucher",
        "A voucher this client provisioned, by its code or by the provision's id.",
        [_query("voucherCode", "The voucher's code"), _query("provisionRequestId", "The provision's id")],
        error,
    )
    paths[suv_ops.BASE_PATH + "/products"] = {
        "get": _suv_get(
            "lookupProducts",
            "The client's catalogue; send If-None-Match with the ETag to get 304 until it changes.",
            [],
            error,
        )
    }
    paths[suv_ops.BASE_PATH + "/products/changes"] = {
        "get": _suv_get(
            "productChanges",
            "What changed in the client's catalogue after a version (X-Catalogue-Version).",
            [_query("since", "A catalogue version", {"type": "integer", "minimum": 0})],
            error,
        )
    }
    return paths, schemas


def _suv_get(name: str, summary: str, params: list[dict[str, Any]], error: str) -> dict[str, Any]:
    return {
        "operationId": name,
        "summary": summary,
        "parameters": params,
        "responses": {"200": {"description": "found", "content": _json({"type": "object"})}, **_errors(error)},
    }


def _errors(error_model: str) -> dict[str, Any]:
    listed = {
        status: {"description": "failure; see errorType", "content": _json(_ref(error_model))}
        for status in ERROR_STATUSES
    }
    return {**listed, "401": UNAUTHORIZED, "403": FORBIDDEN, "413": TOO_LARGE, "415": NOT_JSON, "429": LOCKED}


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "string", "format": "uuid"}
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or {"type": "string"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: Any) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}
