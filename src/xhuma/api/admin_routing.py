"""Operator control of routing under /admin/routing: the contract table, preferences (one
municipality at a time, or a whole CSV), weights, forced re-broadcasts and the audit log. Every
change is checked whole first, applied in one transaction and audited with the admin's name."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.node import Node
from xhuma.routing import contracts
from xhuma.routing.operator import (
    PreferenceChange,
    RoutingChangeError,
    check_meter_id,
    preference_change,
    preferences_from_csv,
    weight_changes,
)
from xhuma.security import operator_actions
from xhuma.validation import FieldError, stored_json_value, whole_number

MAX_CSV_BYTES = 1024 * 1024


def _refused(errors: list[FieldError], status: int = 400) -> Response:
    return json_reply({"error": "nothing was changed", "errors": [msgspec.to_builtins(e) for e in errors]}, status)


def _shown(change: PreferenceChange) -> dict[str, Any]:
    return {"municipality": change.municipality, "providers": change.ranked, "excluded": change.excluded}


class PreferenceBody(msgspec.Struct, forbid_unknown_fields=True):
    providers: list[str] = []
    excluded: list[str] = []


def routing_routes(node: Node) -> list[Route]:
    known = frozenset(node.router.adapters)

    async def body_of(request: Request, kind: Any) -> Any:
        try:
            return stored_json_value(await read_body(request, node.settings.max_body_bytes), kind)
        except msgspec.ValidationError as exc:
            raise RoutingChangeError([FieldError("body", str(exc))]) from None
        except msgspec.DecodeError as exc:
            raise RoutingChangeError([FieldError("body", f"not JSON: {exc}")]) from None

    async def table(request: Request) -> Response:
        meter = request.query_params.get("meter") or None
        given = request.query_params.get("limit", "200")
        limit = whole_number(given, low=1, high=10_000)
        if limit is None:
            return _refused([FieldError("limit", "a whole number from 1 to 10000", given[:40])])
        return json_reply(await node.db.run(contracts.table(meter, limit)))

    async def rebroadcast(request: Request) -> Response:
        meter = request.path_params["meter_id"]
        try:
            check_meter_id(meter)
        except RoutingChangeError as exc:
            return _refused(exc.errors)
        await node.db.run(operator_actions.note_rebroadcast(request.state.operator, meter))
        await node.switch.lookups.rebroadcast(meter)
        return json_reply(await node.db.run(contracts.table(meter)))

    async def list_preferences(_request: Request) -> Response:
        return json_reply(await node.db.run(contracts.preferences()))

    async def put_preferences(request: Request) -> Response:
        try:
            body = await body_of(request, PreferenceBody)
            change = preference_change(request.path_params["municipality"], body.providers, body.excluded, known)
        except RoutingChangeError as exc:
            return _refused(exc.errors)
        await node.db.run(operator_actions.set_preferences(request.state.operator, [change], "set_preferences"))
        return json_reply(
            {"municipality": change.municipality, "providers": change.ranked, "excluded": change.excluded}
        )

    async def clear_preferences(request: Request) -> Response:
        try:
            change = preference_change(request.path_params["municipality"], [], [], known)
        except RoutingChangeError as exc:
            return _refused(exc.errors)
        await node.db.run(operator_actions.set_preferences(request.state.operator, [change], "clear_preferences"))
        return json_reply(_shown(change))

    async def upload_preferences(request: Request) -> Response:
        try:
            raw = await read_body(request, MAX_CSV_BYTES)
        except BodyTooLarge:
            return _refused([FieldError("body", f"larger than {MAX_CSV_BYTES} bytes")], 413)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _refused([FieldError("body", "not UTF-8 text")])
        try:
            changes = preferences_from_csv(text, known)
        except RoutingChangeError as exc:
            return _refused(exc.errors)
        await node.db.run(operator_actions.set_preferences(request.state.operator, changes, "upload_preferences"))
        return json_reply(
            [{"municipality": c.municipality, "providers": c.ranked, "excluded": c.excluded} for c in changes]
        )

    async def show_weights() -> Response:
        operator = await node.db.run(contracts.weights())
        configured = node.router.configured_weights
        return json_reply(
            {
                name: {
                    "weight": operator.get(name, configured.get(name, 1.0)),
                    "setBy": "operator" if name in operator else "config",
                }
                for name in sorted(known)
            }
        )

    async def get_weights(_request: Request) -> Response:
        return await show_weights()

    async def put_weights(request: Request) -> Response:
        try:
            changes = weight_changes(await body_of(request, dict[str, Any]), known)
        except RoutingChangeError as exc:
            return _refused(exc.errors)
        await node.db.run(operator_actions.set_weights(request.state.operator, changes))
        return await show_weights()

    async def audit(_request: Request) -> Response:
        return json_reply(await node.db.run(contracts.audit()))

    return [
        Route("/admin/routing/table", table, methods=["GET"]),
        Route("/admin/routing/meters/{meter_id}/rebroadcast", rebroadcast, methods=["POST"]),
        Route("/admin/routing/preferences", list_preferences, methods=["GET"]),
        Route("/admin/routing/preferences.csv", upload_preferences, methods=["POST"]),
        Route("/admin/routing/preferences/{municipality}", put_preferences, methods=["PUT"]),
        Route("/admin/routing/preferences/{municipality}", clear_preferences, methods=["DELETE"]),
        Route("/admin/routing/weights", get_weights, methods=["GET"]),
        Route("/admin/routing/weights", put_weights, methods=["PUT"]),
        Route("/admin/routing/audit", audit, methods=["GET"]),
    ]
