"""The SUV v1 retail API: voucher provisions, redemptions and refunds with their advices, voucher
look-ups, and the product catalogue (with ETag revalidation and a change log).

Handlers stay thin: read the body within its limit, hand it to the voucher switch. Every route
needs the "suv" scope (`api/access.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma import metrics
from xhuma.api.access import Deny, Refusal, principal, protect, refusal_headers
from xhuma.api.replies import JSON, BodyTooLarge, read_body, sends_json
from xhuma.engine.flow import Reply
from xhuma.node import Node
from xhuma.refusals import refuse
from xhuma.validation import FieldError, whole_number
from xhuma.vouchers import catalogue, catalogue_store
from xhuma.vouchers import operations as ops
from xhuma.vouchers.operations import SuvOperation
from xhuma.vouchers.replies import error_reply, format_error


def suv_routes(node: Node) -> list[Route]:
    def answer(reply: Reply) -> Response:
        return Response(reply.body, reply.status, media_type=JSON, headers=reply.headers)

    def denial(operation_name: str) -> Deny:
        async def deny(request: Request, refusal: Refusal) -> Response:
            words = {401: "Unauthorized", 403: "Forbidden", 429: "Too many failed logins"}[refusal.status]
            reply = error_reply(refusal.status, "AUTHENTICATION_ERROR", words, None)
            path_id = request.path_params.get("provisionId")
            url = request.url.path
            await refuse(node.journal, "suv", operation_name, reply, refusal.reason, retail_id=path_id, url=url)
            return Response(reply.body, refusal.status, media_type=JSON, headers=refusal_headers(refusal))

        return deny

    def endpoint(operation: SuvOperation) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            url = str(request.url.path)
            path_id = request.path_params.get("provisionId")
            client_id = principal(request).client_id
            if not sends_json(request):
                reply = error_reply(415, "FORMAT_ERROR", "Unsupported Content-Type: the body must be JSON", None)
                reason = f"Content-Type {request.headers['content-type'][:60]} is not JSON"
                await refuse(node.journal, "suv", operation.name, reply, reason, client_id=client_id, url=url)
                return answer(reply)
            try:
                body = await read_body(request, node.settings.max_body_bytes)
            except BodyTooLarge:
                limit = node.settings.max_body_bytes
                reply = error_reply(413, "FORMAT_ERROR", "Body too large", None)
                reason = f"body exceeds {limit} bytes"
                await refuse(
                    node.journal, "suv", operation.name, reply, reason, client_id=client_id, retail_id=path_id, url=url
                )
                return answer(reply)
            with metrics.retail_leg("suv"):
                return answer(await node.vouchers.handle(operation, client_id, body, url, path_id))

        return handle

    async def lookup_voucher(request: Request) -> Response:
        client_id = principal(request).client_id
        return answer(await node.vouchers.lookup(client_id, request.query_params))

    async def products(request: Request) -> Response:
        """The client's catalogue; a channel that stored it sends If-None-Match and gets 304
        until something changes."""
        client_id = principal(request).client_id
        version = await node.db.run(catalogue_store.catalogue_version(client_id))
        today = datetime.now(UTC).date()
        etag = f'"{version}-{today.isoformat()}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Catalogue-Version": str(version)}
        if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        listed = await node.db.run(catalogue_store.products(client_id, at=today))
        return answer(Reply(200, catalogue.encode_products(listed), headers))

    async def changes(request: Request) -> Response:
        client_id = principal(request).client_id
        since = whole_number(request.query_params.get("since", "0"))
        if since is None:
            return answer(format_error([FieldError(field="since", error="must be a version number")], None))
        found = await node.db.run(catalogue_store.changes_since(client_id, since))
        version = await node.db.run(catalogue_store.catalogue_version(client_id))
        return answer(Reply(200, catalogue.encode_changes(version, found)))

    def guarded(
        name: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        return protect("suv", denial(name), handler)

    base = ops.BASE_PATH
    routes = [
        Route(base + "/products", guarded("lookupProducts", products), methods=["GET"]),
        Route(base + "/products/changes", guarded("productChanges", changes), methods=["GET"]),
        Route(base + "/vouchers", guarded("lookupVoucher", lookup_voucher), methods=["GET"]),
        Route(base + "/vouchers/", guarded("lookupVoucher", lookup_voucher), methods=["GET"]),
    ]
    for operation in ops.ALL:
        if operation.method != "POST":
            continue
        path = base + operation.path
        handler = guarded(operation.name, endpoint(operation))
        routes.append(Route(path, handler, methods=["POST"], name=operation.name))
        if operation.path in ("/vouchers", "/redemptions", "/refunds"):
            routes.append(Route(path + "/", handler, methods=["POST"]))
    return routes
