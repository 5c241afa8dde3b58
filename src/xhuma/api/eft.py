"""The homing bank's side of inbound EFT: its PaymentStatusReports, answered 202 once taken
(a repeat is taken again harmlessly). Only credentials with the "bank" role may report.

With `[eft] bank_verify_key`, a report must also carry the bank's `x-jwt-signature` over its
exact body (`security.message_signing`): one without it, or whose signature or digest does not
hold, is refused 401 before it is read, and journalled as a rejection."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.access import Refusal, principal, protect, refusal_headers
from xhuma.api.admin import deny_operator, operator
from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.eft.delivery import apply_report
from xhuma.eft.intake import ingest
from xhuma.eft.messages import PaymentStatusReport
from xhuma.engine.flow import Reply
from xhuma.node import Node
from xhuma.refusals import refuse
from xhuma.security import operator_actions
from xhuma.security.message_signing import HEADER, SignatureError, load_verify_keys, verify
from xhuma.storage.db import now_us
from xhuma.storage.journal import Message
from xhuma.validation import stored_json_value


async def deny_bank(request: Request, refusal: Refusal) -> Response:
    words = {401: "bank credentials required", 403: "not allowed", 429: "too many failed logins"}[refusal.status]
    return json_reply({"message": words}, refusal.status, headers=refusal_headers(refusal))


MAX_FILE_NAME = 200
"""The longest file name kept (the eft_files column)."""


def eft_routes(node: Node) -> list[Route]:
    verify_path = node.settings.eft.bank_verify_key
    bank_keys = load_verify_keys(verify_path) if verify_path is not None else None

    def reports(operation: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await read_body(request, node.settings.max_body_bytes)
            except BodyTooLarge as exc:
                return json_reply({"message": str(exc)}, 413)
            if bank_keys is not None:
                try:
                    verify(request.headers.get(HEADER), body, bank_keys)
                except SignatureError as exc:
                    reply = Reply(401, msgspec.json.encode({"message": "bad signature", "detail": str(exc)}))
                    received = Message(
                        "retail",
                        "request",
                        operation,
                        body.decode("utf-8", "replace"),
                        now_us(),
                        "POST",
                        request.url.path,
                        peer="bank",
                    )
                    client_id = principal(request).client_id
                    await refuse(
                        node.journal, "eft", operation, reply, str(exc), client_id=client_id, received=received
                    )
                    return Response(reply.body, 401, media_type="application/json")
            try:
                report = stored_json_value(body, PaymentStatusReport)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                return json_reply({"message": "not a PaymentStatusReport", "detail": str(exc)}, 400)
            result = await node.db.run(apply_report(report, body.decode("utf-8", "replace"), operation))
            if result.status != 202:
                return json_reply({"message": result.detail}, result.status)
            return Response(status_code=202)

        return endpoint

    async def upload(request: Request) -> Response:
        """An EFT file as the request body (admin credentials): taken in as `xhuma eft ingest` would."""
        name = Path(request.query_params.get("name", "upload.eft")).name
        if not name or len(name) > MAX_FILE_NAME or name in (".", ".."):
            return json_reply({"error": f"a file name of 1 to {MAX_FILE_NAME} characters", "field": "name"}, 400)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            try:
                path.write_bytes(await read_body(request, node.settings.eft.max_file_bytes))
            except BodyTooLarge as exc:
                return json_reply({"error": str(exc), "field": "body"}, 413)
            result = await asyncio.to_thread(
                ingest, node.db.engine, path, debit_release=node.settings.eft.debit_release
            )
        await node.db.run(operator_actions.eft_file_taken(operator(request), name, result))
        body = {"file": result.file_id, "state": result.state, "reason": result.reason}
        if result.finding is not None:
            body.update(exception=result.finding.reason, detail=result.finding.detail)
        if result.summary is not None:
            body.update(transactions=result.summary.transactions, transmission=result.summary.transmission_key)
        return json_reply(body, 201 if result.state == "accepted" else 409 if result.state == "redelivered" else 400)

    return [
        Route("/admin/eft/files", protect("admin", deny_operator, upload), methods=["POST"]),
        *(
            Route(f"/inbound/{path}", protect("bank", deny_bank, reports(operation)), methods=["POST"])
            for path, operation in (
                ("credit-transfer-response", "inboundCreditTransferResponse"),
                ("direct-debit-response", "inboundDirectDebitResponse"),
                ("payment-return-response", "inboundPaymentReturnResponse"),
            )
        ),
    ]
