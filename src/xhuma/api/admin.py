"""The operator API under /admin: the store-and-forward queue, reconciliation exceptions,
routing, the voucher catalogue and reconciliation files. Only credentials with the "admin" role may use it; the
credential's username is the actor written to audit logs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.access import Refusal, principal, protect, refusal_headers
from xhuma.api.admin_catalogue import catalogue_routes
from xhuma.api.admin_finance_files import finance_file_routes
from xhuma.api.admin_routing import routing_routes
from xhuma.api.replies import json_reply, read_body
from xhuma.node import Node
from xhuma.saf import queue
from xhuma.security import audit, operator_actions
from xhuma.security.audit import Actor
from xhuma.validation import stored_json_value, whole_number

Handler = Callable[[Request], Awaitable[Response]]


def _problem(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return json_reply(body, status)


async def deny_operator(request: Request, refusal: Refusal) -> Response:
    """An operator API refusal: the reason, without the API's business error shapes."""
    words = {401: "admin credentials required", 403: "not allowed", 429: "too many failed logins"}[refusal.status]
    return json_reply({"error": words}, refusal.status, headers=refusal_headers(refusal))


def operator(request: Request) -> Actor:
    """Who is acting, for the audit log: the credential's username and the source address."""
    return Actor(principal(request).username, request.client.host if request.client else "unknown")


def admin_routes(node: Node) -> list[Route]:
    def guarded(handler: Handler) -> Handler:
        async def with_actor(request: Request) -> Response:
            request.state.operator = operator(request)
            return await handler(request)

        return protect("admin", deny_operator, with_actor)

    def entry_id(request: Request) -> int | None:
        return whole_number(request.path_params["entry_id"])

    async def list_saf(request: Request) -> Response:
        state, name = request.query_params.get("state"), request.query_params.get("queue")
        limit = whole_number(request.query_params.get("limit", "100"), low=1, high=10_000)
        if limit is None:
            return _problem(400, "limit must be a whole number from 1 to 10000", "limit")
        return json_reply(await node.db.run(queue.list_entries(state, name, limit)))

    async def show_saf(request: Request) -> Response:
        wanted = entry_id(request)
        entry = await node.db.run(queue.get_entry(wanted)) if wanted is not None else None
        return json_reply(entry) if entry else _problem(404, "no such entry", "entry_id")

    async def retry_saf(request: Request) -> Response:
        wanted = entry_id(request)
        if wanted is None or not await node.db.run(operator_actions.retry_saf(request.state.operator, wanted)):
            return _problem(409, "only an entry in state exception can be retried", "entry_id")
        node.switch.on_enqueued()
        return json_reply({"id": wanted, "state": queue.PENDING})

    async def resolve_saf(request: Request) -> Response:
        wanted = entry_id(request)
        try:
            body = await read_body(request, node.settings.max_body_bytes)
            note = stored_json_value(body, dict[str, str]).get("note", "")
        except msgspec.ValidationError as exc:
            return _problem(400, str(exc), "note")
        except msgspec.DecodeError:
            note = ""
        if not note:
            return _problem(400, "a note saying how it was resolved is required", "note")
        resolve = operator_actions.resolve_saf(request.state.operator, wanted, note) if wanted is not None else None
        if resolve is None or not await node.db.run(resolve):
            return _problem(409, "only an entry in state exception can be resolved", "entry_id")
        return json_reply({"id": wanted, "state": queue.RESOLVED})

    async def audit_log(request: Request) -> Response:
        limit = whole_number(request.query_params.get("limit", "100"), low=1, high=10_000)
        if limit is None:
            return _problem(400, "limit must be a whole number from 1 to 10000", "limit")
        action = request.query_params.get("action") or None
        return json_reply(await node.db.run(audit.entries(limit, action)))

    async def audit_verify(_request: Request) -> Response:
        counted, broken = await node.db.run(audit.verify())
        if broken is None:
            return json_reply({"entries": counted, "holds": True})
        return json_reply({"entries": counted, "holds": False, "broken_at": broken[0], "reason": broken[1]})

    async def list_exceptions(request: Request) -> Response:
        return json_reply(await node.db.run(queue.list_exceptions(request.query_params.get("state", "open") or None)))

    return [
        Route("/admin/saf", guarded(list_saf), methods=["GET"]),
        Route("/admin/saf/{entry_id}", guarded(show_saf), methods=["GET"]),
        Route("/admin/saf/{entry_id}/retry", guarded(retry_saf), methods=["POST"]),
        Route("/admin/saf/{entry_id}/resolve", guarded(resolve_saf), methods=["POST"]),
        Route("/admin/exceptions", guarded(list_exceptions), methods=["GET"]),
        Route("/admin/audit", guarded(audit_log), methods=["GET"]),
        Route("/admin/audit/verify", guarded(audit_verify), methods=["GET"]),
        *[Route(r.path, guarded(r.endpoint), methods=r.methods) for r in routing_routes(node)],
        *[Route(r.path, guarded(r.endpoint), methods=r.methods) for r in catalogue_routes(node)],
        *[Route(r.path, guarded(r.endpoint), methods=r.methods) for r in finance_file_routes(node)],
    ]
