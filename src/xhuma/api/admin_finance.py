"""Finance under /admin/finance: maker-checker proposals and their approval, and settlement runs.

Makers need the `finance` scope (roles finance and approver), checkers the `approve` scope (the
approver role); the maker and the checker are the authenticated credential's username, and the
rule that they differ and that the checker holds the approver role is `finance.approvals`' (the
same as the command line's). Handlers run on the event loop; the work is `Database.run`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.access import protect
from xhuma.api.admin import _problem, deny_operator, operator
from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.finance import approvals, settlement
from xhuma.node import Node
from xhuma.security.audit import Actor
from xhuma.validation import stored_json_value

Handler = Callable[[Request], Awaitable[Response]]
Decide = Callable[[str, Actor, str], Callable[[Connection], dict[str, Any]]]
MAX_BODY = 64 * 1024
STATUSES = (approvals.PENDING, approvals.APPROVED, approvals.REJECTED, "all")


class Decision(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    note: str


def _refused(exc: approvals.ApprovalRefused) -> Response:
    return _problem(exc.status, str(exc), exc.field)


def finance_routes(node: Node) -> list[Route]:
    async def listed(request: Request) -> Response:
        status = request.query_params.get("status", approvals.PENDING)
        if status not in STATUSES:
            return _problem(400, f"status must be one of {', '.join(STATUSES)}", "status")
        return json_reply(await node.db.run(approvals.approvals(None if status == "all" else status)))

    async def proposed(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_BODY)
        except BodyTooLarge:
            return _problem(413, f"larger than {MAX_BODY} bytes", "body")
        try:
            proposal = stored_json_value(body, approvals.Proposal)
        except msgspec.ValidationError as exc:
            return _problem(400, str(exc))
        except msgspec.DecodeError:
            return _problem(400, "the body is not a JSON object")
        settlement_id = str(uuid.uuid4()) if proposal.kind == "settlement" else None
        try:
            op = approvals.propose(str(uuid.uuid4()), operator(request), proposal, node.settings.finance, settlement_id)
            return json_reply(await node.db.run(op), 201)
        except approvals.ApprovalRefused as exc:
            return _refused(exc)

    def decided(decide: Decide) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                note = stored_json_value(await read_body(request, node.settings.max_body_bytes), Decision).note
            except (msgspec.ValidationError, msgspec.DecodeError):
                return _problem(400, "a JSON object with a note saying why is required", "note")
            try:
                return json_reply(
                    await node.db.run(decide(request.path_params["approval_id"], operator(request), note))
                )
            except approvals.ApprovalRefused as exc:
                return _refused(exc)

        return handler

    async def settlements(request: Request) -> Response:
        return json_reply(await node.db.run(settlement.settlements(request.query_params.get("counterparty"))))

    async def one_settlement(request: Request) -> Response:
        found = await node.db.run(settlement.settlement(request.path_params["settlement_id"]))
        return json_reply(found) if found is not None else _problem(404, "no such settlement", "settlement_id")

    def maker(handler: Handler) -> Handler:
        return protect("finance", deny_operator, handler)

    def checker(handler: Handler) -> Handler:
        return protect("approve", deny_operator, handler)

    base = "/admin/finance"
    return [
        Route(f"{base}/approvals", maker(listed), methods=["GET"]),
        Route(f"{base}/approvals", maker(proposed), methods=["POST"]),
        Route(f"{base}/approvals/{{approval_id}}/approve", checker(decided(approvals.approve)), methods=["POST"]),
        Route(f"{base}/approvals/{{approval_id}}/reject", checker(decided(approvals.reject)), methods=["POST"]),
        Route(f"{base}/settlements", maker(settlements), methods=["GET"]),
        Route(f"{base}/settlements/{{settlement_id}}", maker(one_settlement), methods=["GET"]),
    ]
