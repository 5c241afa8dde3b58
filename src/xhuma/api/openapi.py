"""The OpenAPI document of the retail API, built from the operation table and the wire structs."""

from __future__ import annotations

from typing import Any

import msgspec

from xhuma.ppu import operations as ops
from xhuma.ppu import wire

ERROR_STATUSES = ("400", "404", "500", "501", "503", "504")


def build_openapi() -> dict[str, Any]:
    models = {op.request_model for op in ops.ALL} | {op.response_model for op in ops.ALL if op.response_model}
    models.add(wire.ErrorDetail)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, components = msgspec.json.schema_components(ordered, ref_template="#/components/schemas/{name}")
    paths: dict[str, Any] = {}
    for op in ops.ALL:
        params = [name for name in ("requestId", "id") if "{" + name + "}" in op.path]
        route = ops.BASE_PATH + op.path
        paths[route] = {
            "post": {
                "operationId": op.name,
                "summary": op.summary,
                "parameters": [
                    {"name": p, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                    for p in params
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(op.request_model)}},
                },
                "responses": {
                    str(op.success_status): {
                        "description": "success",
                        "content": {"application/json": {"schema": _ref(op.response_model)}},
                    },
                    **{
                        status: {
                            "description": "failure; see errorType",
                            "content": {"application/json": {"schema": _ref(wire.ErrorDetail)}},
                        }
                        for status in ERROR_STATUSES
                    },
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "xhuma: Prepaid Utility Service Interface v3", "version": "3.13.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


def _ref(model: Any) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}
