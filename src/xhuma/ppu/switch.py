"""The PPU switch: takes a retailer's message, journals it, routes it upstream and answers.

Money-safety rules that shape this module:
- the upstream request is journalled (as the exact bytes) before it is sent, so after a crash
  we know what may have been bought;
- every outcome and the retail answer are journalled before the answer is returned;
- a retry never buys again: it answers from the journal, or asks the same provider to retry
  the same upstream purchase;
- an advice is journalled together with its store-and-forward entry, then acknowledged."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from sqlalchemy import Connection

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import REPRINTABLE, TOKEN_KNOWN, Kind, State
from xhuma.echo import echo, restamp
from xhuma.engine.flow import RETAIL, Institution, Reply, rfc3339_now, sent
from xhuma.engine.requests import Candidate, Engine, Interface, queue_call
from xhuma.ppu import operations as ops
from xhuma.ppu import wire
from xhuma.ppu.lookups import BroadcastLookups, healthy
from xhuma.ppu.operations import Operation
from xhuma.ppu.replies import error_reply, format_error
from xhuma.providers.base import ProviderAdapter, UpstreamAnswer, UpstreamCall
from xhuma.refusals import Refuser, field_reasons
from xhuma.routing import Router
from xhuma.security.masking import mask_bytes
from xhuma.storage import journal
from xhuma.storage.db import now_us
from xhuma.storage.journal import AdviceResult, Journal, Message, NewTransaction, open_exception
from xhuma.validation import FieldError, InvalidMessage, decode, is_uuid, path_id_errors, raw_id

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

PASSED_THROUGH_FAILURES = frozenset({400, 404, 501, 503})
DEFAULT_STATUS_ERROR = {
    400: "TRANSACTION_DECLINED",
    404: "UNABLE_TO_LOCATE_RECORD",
    501: "FUNCTION_NOT_SUPPORTED",
    503: "UPSTREAM_UNAVAILABLE",
}


class PpuSwitch(Interface):
    def __init__(
        self, journal: Journal, router: Router, institution: Institution, *, broadcast_timeout: float = 10.0
    ) -> None:
        self.journal = journal
        self.router = router
        self.institution = institution
        self.engine = Engine(journal, self, "ppu")
        self.lookups = BroadcastLookups(self, broadcast_timeout)
        self.refuse = Refuser(journal, "ppu")

    async def handle(self, operation: Operation, client_id: str, path: dict[str, str], body: bytes, url: str) -> Reply:
        received = Message(RETAIL, "request", operation.name, body.decode("utf-8", "replace"), now_us(), "POST", url)
        bad_path = path_id_errors(path)
        if bad_path:
            retail_id = next((v for k, v in path.items() if k == "id" and is_uuid(v)), None)
            reply = format_error(operation, raw_id(body), bad_path)
            return await self.refuse(received, client_id, retail_id, reply, field_reasons(bad_path))
        try:
            message = decode(body, operation.request_model)
        except InvalidMessage as exc:
            reply = format_error(operation, raw_id(body), exc.errors)
            return await self.refuse(received, client_id, raw_id(body), reply, field_reasons(exc.errors))

        mismatch = self._path_mismatch(operation, path, message)
        if mismatch:
            reply = format_error(operation, message.id, mismatch)
            return await self.refuse(received, client_id, message.id, reply, field_reasons(mismatch))
        if operation.is_advice:
            return await self._advise(operation, client_id, message, body, received)
        if message.client.id != client_id:
            reply = error_reply(
                403,
                "GENERAL_ERROR",
                "Client not allowed",
                operation,
                message.id,
                detail=[
                    {
                        "field": "client.id",
                        "error": "does not match the authenticated client",
                        "invalidValue": message.client.id,
                    }
                ],
            )
            reason = f"client.id {message.client.id} is not the authenticated client {client_id}"
            return await self.refuse(received, client_id, message.id, reply, reason)
        if operation is ops.RETRY:
            return await self._retry(client_id, path["id"], message, received)
        if operation is ops.REPRINT:
            return await self._reprint(client_id, message, received)
        return await self._forward(operation, client_id, message, received)

    @staticmethod
    def _path_mismatch(operation: Operation, path: dict[str, str], message: Any) -> list[FieldError]:
        if operation is ops.RETRY:
            return []  # the path names the original purchase; the body may carry a new id
        errors = []
        if path.get("id") != message.id:
            errors.append(FieldError(field="id", error="does not match the id in the path", invalid_value=message.id))
        if operation.is_advice and path.get("requestId") != message.request_id:
            errors.append(
                FieldError(
                    field="requestId",
                    error="does not match the request id in the path",
                    invalid_value=message.request_id,
                )
            )
        return errors

    # --- requests -------------------------------------------------------------------------

    async def _forward(
        self,
        operation: Operation,
        client_id: str,
        message: Any,
        received: Message,
        *,
        retail_id: str | None = None,
        adapter: ProviderAdapter | None = None,
    ) -> Reply:
        meter_id = message.meter.meter_id
        if adapter is not None:
            return await self._send_in_turn(operation, client_id, message, received, retail_id, [adapter])
        plan = await self.router.plan(operation.kind, meter_id)
        if operation is ops.METER_LOOKUP:
            targets = plan.ordered[:1] + [a for a in plan.unasked if a not in plan.ordered[:1]]
            if targets:
                reply, _ = await self.lookups.ask(client_id, message, received, retail_id or message.id, targets)
                return reply
        elif not plan.ordered and plan.unasked:
            # Nobody known to serve this meter can do this: ask the providers not heard from
            # (journalled as a lookup of our own) and go by the same rules as for a known meter.
            found = await self.lookups.discover(operation.kind, meter_id, plan.unasked)
            if found:
                return await self._send_in_turn(operation, client_id, message, received, retail_id, found)
            plan = await self.router.plan(operation.kind, meter_id)
        if plan.ordered:
            return await self._send_in_turn(operation, client_id, message, received, retail_id, plan.ordered)
        retail = retail_id or message.id
        if plan.known_elsewhere:
            reply = error_reply(501, "FUNCTION_NOT_SUPPORTED", "No provider for this", operation, message.id)
            return await self.refuse(received, client_id, retail, reply, f"no provider for meter {meter_id}")
        if plan.unasked:
            # Some providers have not said whether they serve the meter; nothing was sent.
            reason = f"no answer about meter {meter_id} from {sorted(a.name for a in plan.unasked)}"
            reply = error_reply(
                503, "UPSTREAM_UNAVAILABLE", "No provider answered", operation, message.id, detail=reason
            )
            return await self.refuse(received, client_id, retail, reply, reason)
        reply = error_reply(400, "UNKNOWN_METER_ID", "Unknown meter", operation, message.id)
        return await self.refuse(received, client_id, retail, reply, f"no provider knows meter {meter_id}")

    async def _send_in_turn(
        self,
        operation: Operation,
        client_id: str,
        message: Any,
        received: Message,
        retail_id: str | None,
        candidates: list[ProviderAdapter],
    ) -> Reply:
        """Open the request and let the engine send it in turn to the candidates."""
        tx_id = str(uuid.uuid4())
        upstream = self.upstream_message(message, tx_id)
        adapter = candidates[0]
        call = adapter.prepare(operation, upstream)
        amount = getattr(message, "purchase_amount", None)
        tx = NewTransaction(
            id=tx_id,
            client_id=client_id,
            retail_id=retail_id or message.id,
            kind=operation.kind,
            state=State.SENT_UPSTREAM,
            meter_id=message.meter.meter_id,
            amount=amount.amount if amount else None,
            currency=amount.currency if amount else None,
            provider=adapter.name,
            upstream_request=call.body.decode(),
        )
        if not await self.journal.open(tx, [received, sent(call, adapter)]):
            reply = error_reply(400, "DUPLICATE_RECORD", "Duplicate id", operation, message.id)
            return await self.refuse(received, client_id, tx.retail_id, reply, "retail id taken")

        def candidate(adapter: ProviderAdapter) -> Candidate:
            return Candidate(
                adapter,
                prepare=lambda: adapter.prepare(operation, upstream),
                reroute=lambda call, items: journal.reroute(tx_id, adapter.name, items),
            )

        return await self.engine.send_in_turn(operation, tx_id, message, call, [candidate(a) for a in candidates])

    # --- the flow the engine runs ------------------------------------------------------------

    def moves_money(self, operation: Operation) -> bool:
        return operation.kind is Kind.PURCHASE

    def has_goods(self, payload: dict[str, Any] | None) -> bool:
        return has_tokens(payload)

    def heard(self, adapter: ProviderAdapter, answer: UpstreamAnswer) -> None:
        self.router.availability.observe(adapter.name, healthy(answer))

    def after_outcome(
        self,
        conn: Connection,
        operation: Operation,
        tx_id: str,
        state: State,
        answer: UpstreamAnswer,
        adapter: ProviderAdapter,
    ) -> None:
        if operation.kind is Kind.PURCHASE and answer.outcome is Outcome.UNKNOWN and state is State.UNKNOWN:
            self.queue_follow_up(conn, tx_id, adapter.name, journal.upstream_request(conn, tx_id))

    def adapter(self, provider: str | None) -> ProviderAdapter | None:
        return self.router.by_name(provider)

    def retry_call(self, adapter: ProviderAdapter, row: dict[str, Any]) -> UpstreamCall:
        return adapter.prepare(ops.RETRY, _decode(row["upstream_request"]))

    def cannot_retry(self, message: Any, row: dict[str, Any]) -> Reply:
        return error_reply(
            504,
            "OUTCOME_UNKNOWN",
            "Outcome unknown",
            ops.RETRY,
            message.id,
            detail="the provider does not support retries; reverse the purchase",
        )

    def in_progress(self, message: Any) -> Reply:
        return error_reply(504, "UPSTREAM_UNAVAILABLE", "In progress", ops.RETRY, message.id)

    def queue_follow_up(self, conn: Connection, tx_id: str, provider: str | None, upstream_request: str) -> None:
        """Queue the retrieval of a purchase whose outcome is unknown (a retry at the same
        provider, repeated by store-and-forward); where the provider cannot retry, a person has
        to find out, so it becomes a reconciliation exception."""
        adapter = self.router.by_name(provider)
        if adapter is None or not adapter.config.supports("retry"):
            open_exception(conn, tx_id, "outcome_unknown", f"provider {provider} cannot retry; settle by hand")
            return
        call = adapter.prepare(ops.RETRY, _decode(upstream_request))
        queue_call(conn, f"ppu:{adapter.name}", tx_id, call)

    def upstream_message(self, message: Any, tx_id: str) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(message)
        out["id"] = tx_id
        out["time"] = rfc3339_now()
        out["client"] = {"id": self.institution.id, "name": self.institution.name}
        out["thirdPartyIdentifiers"] = [*out["thirdPartyIdentifiers"], self._our_identifier(tx_id)]
        return out

    def _our_identifier(self, tx_id: str) -> dict[str, str]:
        return {"institutionId": self.institution.id, "transactionIdentifier": tx_id}

    def retail_reply(
        self, operation: Operation, message: Any, tx_id: str, answer: UpstreamAnswer
    ) -> tuple[Reply, str | None]:
        if answer.outcome is Outcome.SUCCESSFUL and answer.payload is not None:
            body = self._echo(answer.payload, message, tx_id)
            return Reply(operation.success_status, _encode(body)), None
        if answer.outcome is Outcome.UNKNOWN:
            return error_reply(504, "UPSTREAM_UNAVAILABLE", "Timeout", operation, message.id), None
        if not answer.delivered or answer.status not in PASSED_THROUGH_FAILURES:
            reply = error_reply(
                503,
                "UPSTREAM_UNAVAILABLE",
                "Provider unavailable",
                operation,
                message.id,
                detail=answer.transport_error or f"provider answered HTTP {answer.status}",
            )
            return reply, "UPSTREAM_UNAVAILABLE"
        assert answer.status is not None
        error_type = answer.error_type
        if error_type not in wire.ERROR_TYPES:
            error_type = DEFAULT_STATUS_ERROR[answer.status]
        payload = answer.payload or {}
        provider_text = payload.get("errorMessage")
        text = provider_text if isinstance(provider_text, str) else error_type
        reply = error_reply(answer.status, error_type, text, operation, message.id, detail=payload.get("detailMessage"))
        return reply, error_type

    def _echo(self, payload: dict[str, Any], message: Any, tx_id: str) -> dict[str, Any]:
        """The provider's answer with our retailer's own echo fields put back (§1.6)."""
        return echo(payload, msgspec.to_builtins(message), self._our_identifier(tx_id))

    def restamp(self, stored: str, message: Any) -> bytes:
        return _encode(restamp(_decode(stored), msgspec.to_builtins(message), message.id))

    # --- retries and reprints ---------------------------------------------------------------

    async def _retry(self, client_id: str, original_id: str, message: Any, received: Message) -> Reply:
        row = await self.journal.find(client_id, Kind.PURCHASE, original_id)
        if row is None:
            # We never journalled it, so we never sent it: buying now cannot buy twice.
            return await self._forward(ops.RETRY, client_id, message, received, retail_id=original_id)
        return await self.engine.retry(
            ops.RETRY, row, message, received, lambda: self.journal.find(client_id, Kind.PURCHASE, original_id)
        )

    async def _reprint(self, client_id: str, message: Any, received: Message) -> Reply:
        """A reprint of the client's own purchase only (the one it names, or its newest for the
        meter): never another retailer's, whose token and customer it must not see. Upstream,
        every purchase is ours, so a provider asked blindly would reprint anyone's."""
        operation = ops.REPRINT
        meter_id = message.meter.meter_id
        if message.original_ref:
            original = await self.journal.find(client_id, Kind.PURCHASE, message.original_ref)
        else:
            original = await self.journal.last_purchase(client_id, meter_id)
        if original is None or original["meter_id"] != meter_id or original["state"] not in REPRINTABLE:
            reply = error_reply(404, "UNABLE_TO_LOCATE_RECORD", "No token to reprint", operation, message.id)
            return await self.refuse(received, client_id, message.id, reply, "no purchase of this client to reprint")
        if original["state"] in TOKEN_KNOWN:
            tx = NewTransaction(
                id=str(uuid.uuid4()),
                client_id=client_id,
                retail_id=message.id,
                kind=Kind.REPRINT,
                state=State.APPROVED,
                meter_id=message.meter.meter_id,
                parent_id=original["id"],
            )
            if not await self.journal.open(tx, []):
                reply = error_reply(400, "DUPLICATE_RECORD", "Duplicate id", operation, message.id)
                return await self.refuse(received, client_id, message.id, reply, "retail id taken")
            return await self.engine.answer_from_journal(operation, tx.id, original, message, received)
        adapter = self.router.by_name(original["provider"]) if original["provider"] else None
        if adapter is None or not adapter.config.supports("reprint"):
            reply = error_reply(501, "FUNCTION_NOT_SUPPORTED", "The provider cannot reprint", operation, message.id)
            return await self.refuse(
                received, client_id, message.id, reply, f"provider {original['provider']} cannot reprint"
            )
        # The provider knows the purchase by our upstream id, not by the retailer's.
        upstream = msgspec.structs.replace(message, original_ref=original["id"])
        return await self._forward(operation, client_id, upstream, received, adapter=adapter)

    # --- advices ----------------------------------------------------------------------------

    async def _advise(
        self, operation: Operation, client_id: str, message: Any, body: bytes, received: Message
    ) -> Reply:
        advice_id = str(uuid.uuid4())
        echo = mask_bytes(body)  # the advice echoed, its card number masked
        acknowledged = Message(RETAIL, "response", operation.name, echo.decode(), now_us(), status=202)
        advice = NewTransaction(
            id=advice_id,
            client_id=client_id,
            retail_id=message.id,
            kind=operation.kind,
            state=State.ACCEPTED,
        )

        def queue_delivery(conn: Connection, parent: dict[str, Any]) -> None:
            if parent["state"] == State.DECLINED:
                return  # the provider refused it or never received it: nothing to advise
            adapter = self.router.by_name(parent["provider"])
            if adapter is None or not adapter.config.supports("advice"):
                if operation.kind is Kind.REVERSAL:
                    # Nobody upstream will undo it: a person must settle it with the provider.
                    open_exception(conn, advice_id, "reversal_not_supported", f"provider {parent['provider']}")
                return
            upstream: dict[str, Any] = msgspec.to_builtins(message)
            upstream.update(id=advice_id, requestId=parent["id"], time=rfc3339_now())
            call = adapter.prepare(operation, upstream, request_id=parent["id"])
            queue_call(conn, f"ppu:{adapter.name}", advice_id, call)

        result, _ = await self.journal.accept_advice(
            advice, ops.ADVISED_KIND[operation.kind], message.request_id, [received, acknowledged], queue_delivery
        )
        if result is AdviceResult.ACCEPTED:
            self.on_enqueued()
        if result is AdviceResult.UNKNOWN_REQUEST:
            reply = error_reply(
                404,
                "UNABLE_TO_LOCATE_RECORD",
                "Unknown request",
                operation,
                message.id,
                original_id=message.request_id,
            )
            reason = f"no {ops.ADVISED_KIND[operation.kind]} {message.request_id} to advise"
            return await self.refuse(received, client_id, message.id, reply, reason)
        if result is AdviceResult.DUPLICATE:
            reply = error_reply(
                400, "DUPLICATE_RECORD", "Duplicate id", operation, message.id, original_id=message.request_id
            )
            return await self.refuse(received, client_id, message.id, reply, "advice id taken")
        return Reply(202, echo)


def has_tokens(payload: dict[str, Any] | None) -> bool:
    """A purchase is sold with at least one token; a success without one is not yet known."""
    tokens = payload.get("tokens") if payload else None
    return isinstance(tokens, list) and len(tokens) > 0
