"""The OpenAPI description of the operator API (/admin, the "admin" role), the homing bank's
status reports (/inbound, the "bank" role) and the two open routes (/health, /openapi.json).

The retail APIs are described from their operation tables (`api/openapi.py`); these routes are
few and each unlike the others, so they are listed here, one entry per route, and a test checks
that the list and the server's routes are the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from xhuma.api.admin_routing import PreferenceBody
from xhuma.eft.messages import PaymentStatusReport
from xhuma.finance.approvals import Proposal

JSON = "application/json"
PROBLEM = {
    "type": "object",
    "description": "`error` says what is wrong; `field` (or each of `errors`) names the field",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}, "errors": {"type": "array"}},
}
LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}
ENTRY = {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
CLIENT = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 40}}


@dataclass(frozen=True)
class Described:
    method: str
    path: str
    summary: str
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: tuple[str, dict[str, Any]] | None = None
    """The body's media type and schema."""
    answers: tuple[int, ...] = (200,)
    refusals: tuple[int, ...] = ()
    role: str | None = "admin"
    """The credential's role the route needs (None: open to anyone; finance: finance or approver)."""


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or {"type": "string"}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


REPORT = (JSON, _ref("PaymentStatusReport"))
NOTE = {"type": "object", "required": ["note"], "properties": {"note": {"type": "string", "minLength": 1}}}
ROUTES = (
    Described("get", "/health", "200 once the node serves, 503 while it starts", role=None, refusals=(503,)),
    Described("get", "/openapi.json", "This document", role=None),
    Described(
        "get",
        "/health/services",
        "Each service and provider, HEALTHY or UNHEALTHY, with its success rate over the window and why",
        [_query("window", "Seconds the success rates are counted over (default 300)", {"type": "integer"})],
        refusals=(400,),
    ),
    Described("get", "/metrics", "Prometheus metrics (text exposition format)"),
    Described(
        "post",
        "/oauth/token",
        "An OAuth2 access token (RFC 6749): grant_type password or client_credentials",
        body=(
            "application/x-www-form-urlencoded",
            {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    name: {"type": "string"}
                    for name in ("grant_type", "username", "password", "client_id", "client_secret", "scope")
                },
            },
        ),
        refusals=(400, 401),
        role=None,
    ),
    Described("get", "/.well-known/jwks.json", "The public keys that verify access tokens", role=None),
    Described(
        "get",
        "/admin/saf",
        "Store-and-forward entries",
        [_query("state", "pending, exception, delivered, ..."), _query("queue", "e.g. ppu:sim"), LIMIT],
        refusals=(400,),
    ),
    Described("get", "/admin/saf/{entry_id}", "One entry", [ENTRY], refusals=(404,)),
    Described("post", "/admin/saf/{entry_id}/retry", "Retry an entry in state exception", [ENTRY], refusals=(409,)),
    Described(
        "post",
        "/admin/saf/{entry_id}/resolve",
        "Close an entry in state exception, saying how it was resolved",
        [ENTRY],
        (JSON, {"type": "object", "required": ["note"], "properties": {"note": {"type": "string", "minLength": 1}}}),
        refusals=(400, 409),
    ),
    Described("get", "/admin/exceptions", "Reconciliation exceptions", [_query("state", "open (default), resolved")]),
    Described(
        "get",
        "/admin/audit",
        "The audit log, newest first",
        [LIMIT, _query("action", "e.g. clients.add")],
        refusals=(400,),
    ),
    Described("get", "/admin/audit/verify", "Whether the audit log's hash chain holds"),
    Described(
        "get", "/admin/routing/table", "The contract table", [_query("meter", "A meter id"), LIMIT], refusals=(400,)
    ),
    Described(
        "post",
        "/admin/routing/meters/{meter_id}/rebroadcast",
        "Ask every provider about a meter again",
        [_path("meter_id", "A meter id")],
        refusals=(400,),
    ),
    Described("get", "/admin/routing/preferences", "Every municipality's preferences and exclusions"),
    Described(
        "post",
        "/admin/routing/preferences.csv",
        "Replace preferences from a CSV (checked whole; nothing applied if any line is bad)",
        body=("text/csv", {"type": "string"}),
        refusals=(400,),
    ),
    Described(
        "put",
        "/admin/routing/preferences/{municipality}",
        "Set one municipality's preferred (ranked) and excluded providers",
        [_path("municipality", "As a lookup's utility name")],
        (JSON, _ref("PreferenceBody")),
        refusals=(400,),
    ),
    Described(
        "delete",
        "/admin/routing/preferences/{municipality}",
        "Clear one municipality's preferences",
        [_path("municipality", "As a lookup's utility name")],
        refusals=(400,),
    ),
    Described("get", "/admin/routing/weights", "Each provider's weight, and who set it"),
    Described(
        "put",
        "/admin/routing/weights",
        "Set weights (null: back to the configured one)",
        body=(JSON, {"type": "object", "additionalProperties": {"type": ["number", "null"], "minimum": 0}}),
        refusals=(400,),
    ),
    Described("get", "/admin/routing/audit", "Routing changes, newest first"),
    Described("get", "/admin/catalogue/{client_id}/products", "A client's voucher catalogue", [CLIENT]),
    Described(
        "put",
        "/admin/catalogue/{client_id}/products",
        "Import products as JSON (checked whole)",
        [CLIENT, _query("replace", "true: products not in the import are removed")],
        (JSON, {"type": "object", "properties": {"products": {"type": "array"}}}),
        refusals=(400,),
    ),
    Described(
        "post",
        "/admin/catalogue/{client_id}/products.csv",
        "Import products as CSV (checked whole)",
        [CLIENT, _query("replace", "true: products not in the import are removed")],
        ("text/csv", {"type": "string"}),
        refusals=(400,),
    ),
    Described(
        "delete",
        "/admin/catalogue/{client_id}/products/{code}",
        "Remove a product",
        [CLIENT, _path("code", "The client's product code")],
        refusals=(404,),
    ),
    Described(
        "get",
        "/admin/catalogue/{client_id}/changes",
        "What changed after a catalogue version",
        [CLIENT, _query("since", "A catalogue version", {"type": "integer", "minimum": 0})],
        refusals=(400,),
    ),
    Described(
        "post",
        "/admin/eft/files",
        "Take in an EFT file (as `xhuma eft ingest`)",
        [_query("name", "The file's name")],
        ("application/octet-stream", {"type": "string", "format": "binary"}),
        refusals=(400, 409),
    ),
    Described(
        "get",
        "/admin/finance/approvals",
        "Finance proposals awaiting approval (or of another status), oldest first",
        [_query("status", "pending (default), approved, rejected or all")],
        refusals=(400,),
        role="finance",
    ),
    Described(
        "post",
        "/admin/finance/approvals",
        "Propose a finance change (accept, write_off, resolve, rollback, settlement) as the caller",
        body=(JSON, _ref("Proposal")),
        answers=(201,),
        refusals=(400, 404, 409, 413),
        role="finance",
    ),
    *(
        Described(
            "post",
            f"/admin/finance/approvals/{{approval_id}}/{verb}",
            f"{verb.capitalize()} another user's proposal, as the caller (an approver), with a note",
            [_path("approval_id", "The approval's id")],
            (JSON, NOTE),
            refusals=(400, 404, 409),
            role="approver",
        )
        for verb in ("approve", "reject")
    ),
    Described(
        "get",
        "/admin/finance/settlements",
        "Settlement runs, oldest first",
        [_query("counterparty", "A process's counterparty")],
        role="finance",
    ),
    Described(
        "get",
        "/admin/finance/settlements/{settlement_id}",
        "One settlement run, with its fee lines and matches",
        [_path("settlement_id", "The settlement's id")],
        refusals=(404,),
        role="finance",
    ),
    Described(
        "post",
        "/admin/finance/files",
        "Take in a counterparty's reconciliation file (as `xhuma recon load`): checked whole, duplicates refused",
        [
            {**_query("process", "The process's name in [[finance.processes]]"), "required": True},
            {**_query("name", "The file's name (checked against the process's name_pattern)"), "required": True},
        ],
        ("application/octet-stream", {"type": "string", "format": "binary"}),
        answers=(201,),
        refusals=(404, 409, 413, 422),
    ),
    Described(
        "get",
        "/admin/finance/files",
        "A process's files and what became of each",
        [{**_query("process", "The process's name"), "required": True}],
        refusals=(404,),
    ),
    *(
        Described(
            "post",
            f"/inbound/{name}",
            f"The homing bank's {name.replace('-', ' ')} (a PaymentStatusReport); a repeat is taken again",
            body=REPORT,
            answers=(202,),
            refusals=(400, 404, 409),
            role="bank",
        )
        for name in ("credit-transfer-response", "direct-debit-response", "payment-return-response")
    ),
)


def operator_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """The paths and the component schemas they refer to."""
    _, schemas = msgspec.json.schema_components(
        [PaymentStatusReport, PreferenceBody, Proposal], ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {}
    for route in ROUTES:
        responses: dict[str, Any] = {
            str(status): {"description": "done", "content": {JSON: {"schema": {"type": ["object", "array"]}}}}
            for status in route.answers
        }
        responses |= {
            str(status): {"description": "refused", "content": {JSON: {"schema": PROBLEM}}}
            # 400: control characters in the URL, for any route; 413: a body beyond its limit
            for status in sorted({400, *route.refusals, *((413,) if route.body else ())})
        }
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method}{route.path}",
            "parameters": route.parameters,
            "responses": responses,
        }
        if route.role is None:
            operation["security"] = []
        else:
            responses["401"] = {"description": "no valid credentials"}
            responses["403"] = {
                "description": f"a credential without the {route.role!r} role's scope, or from outside its networks"
            }
            responses["429"] = {"description": "the username is locked after five failed logins within a minute"}
            operation["x-role"] = route.role
        if route.body is not None:
            media, schema = route.body
            operation["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
        paths.setdefault(route.path, {})[route.method] = operation
    return paths, schemas
