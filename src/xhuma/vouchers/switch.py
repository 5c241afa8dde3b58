"""The voucher switch: serves SUV v1 to retailers and issues vouchers at the providers the
catalogue maps each product to.

The money-safety rules are PPU's: the upstream request is journalled before it is sent, the
outcome and the retail answer before the retailer hears it; a retry never issues a second
voucher (it answers from the journal, or asks the same provider to retry the same provision);
an advice is journalled with its store-and-forward entry before it is acknowledged. Where a
provider cannot undo or retry, what the retailer may owe is recorded as exposure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection

from xhuma.domain.outcomes import Outcome
from xhuma.domain.transactions import Kind, State
from xhuma.domain.vouchers import ALREADY_REVERSED, Refusal, VoucherState, transition
from xhuma.echo import ECHO_FIELDS, echo, restamp
from xhuma.engine.flow import RETAIL, Institution, Reply, rfc3339_now, sent
from xhuma.engine.requests import Candidate, Engine, Interface, queue_call
from xhuma.providers.base import UpstreamAnswer, UpstreamCall
from xhuma.providers.suv_v1 import SuvV1Adapter
from xhuma.refusals import Refuser, field_reasons
from xhuma.security.masking import mask_bytes
from xhuma.storage import journal
from xhuma.storage.db import now_us
from xhuma.storage.journal import Journal, Message, NewTransaction, open_exception
from xhuma.validation import FieldError, InvalidMessage, path_id_errors, raw_id
from xhuma.vouchers import catalogue_store, store, wire
from xhuma.vouchers import operations as ops
from xhuma.vouchers.operations import CAPABILITY_OF, REQUEST_NAME, SuvOperation
from xhuma.vouchers.replies import decode_strict, error_reply, format_error

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

QUEUE_PREFIX = "suv:"
PASSED_THROUGH = frozenset({400, 404})


Routed = tuple[list[tuple[SuvV1Adapter, str | None]], int | None, str | None]
"""A provision's providers in turn (each with its product code), its amount and currency."""


@dataclass(frozen=True)
class Refused:
    """A provision refused before it is journalled: the reply, and the reason kept with it."""

    reply: Reply
    reason: str


class VoucherSwitch(Interface):
    def __init__(self, journal: Journal, adapters: Mapping[str, SuvV1Adapter], institution: Institution) -> None:
        self.journal = journal
        self.adapters = dict(adapters)
        self.institution = institution
        self.engine = Engine(journal, self, "suv")
        self._refuse = Refuser(journal, "suv")

    async def handle(
        self, operation: SuvOperation, client_id: str, body: bytes, url: str, path_id: str | None
    ) -> Reply:
        received = Message(RETAIL, "request", operation.name, body.decode("utf-8", "replace"), now_us(), "POST", url)
        assert operation.request_model is not None
        bad_path = path_id_errors({"provisionId": path_id} if path_id is not None else {})
        if bad_path:
            return await self._refuse(
                received, client_id, None, format_error(bad_path, raw_id(body)), field_reasons(bad_path)
            )
        try:
            message = decode_strict(body, operation.request_model)
        except InvalidMessage as exc:
            reply = format_error(exc.errors, raw_id(body))
            return await self._refuse(received, client_id, raw_id(body), reply, field_reasons(exc.errors))
        if operation.is_advice:
            return await self._advise(operation, client_id, message, received)
        if message.client.id != client_id:
            reply = error_reply(400, "AUTHENTICATION_ERROR", "Credentials do not belong to client.id", message.id)
            reason = f"client.id {message.client.id} is not the authenticated client {client_id}"
            return await self._refuse(received, client_id, message.id, reply, reason)
        if operation is ops.PROVISION:
            return await self._provision(client_id, message, received, retail_id=message.id)
        if operation is ops.RETRY:
            assert path_id is not None
            return await self._retry(client_id, path_id, message, received)
        return await self._redeem_or_refund(operation, client_id, message, received)

    # --- provisions -------------------------------------------------------------------------

    async def _provision(
        self, client_id: str, message: wire.ProvisionRequest, received: Message, *, retail_id: str
    ) -> Reply:
        operation = ops.PROVISION
        product_id = message.product.product_id if message.product else None
        routed = await (self._by_product(product_id, client_id, message) if product_id else self._by_receiver(message))
        if isinstance(routed, Refused):
            return await self._refuse(received, client_id, retail_id, routed.reply, routed.reason)
        candidates, amount, currency = routed
        tx_id = str(uuid.uuid4())
        adapter, provider_code = candidates[0]
        upstream = self._upstream_message(message, tx_id, provider_code, amount)
        call = adapter.prepare(operation, upstream)
        tx = NewTransaction(
            id=tx_id,
            client_id=client_id,
            retail_id=retail_id,
            kind=Kind.VOUCHER_PROVISION,
            state=State.SENT_UPSTREAM,
            amount=amount,
            currency=currency,
            provider=adapter.name,
            upstream_request=call.body.decode(),
        )
        issue = store.Issue(product_id or None, adapter.name, provider_code, amount, currency)
        opened = await self.journal.db.run(store.open_request(tx, received, sent(call, adapter), issue))
        if opened is None:
            return await self._refuse(
                received, client_id, retail_id, await self._duplicate(client_id, message.id), "retail id taken"
            )
        if opened:
            return await self._refused_early(tx_id, message.id, Kind.VOUCHER_PROVISION, opened)

        def candidate(adapter: SuvV1Adapter, provider_code: str | None) -> Candidate:
            def prepare() -> UpstreamCall:
                return adapter.prepare(operation, self._upstream_message(message, tx_id, provider_code, amount))

            def reroute(call: UpstreamCall, items: list[Message]) -> store.Op:
                return store.reroute(tx_id, adapter.name, provider_code, call.body.decode(), items)

            return Candidate(adapter, prepare, reroute)

        return await self.engine.send_in_turn(operation, tx_id, message, call, [candidate(*c) for c in candidates])

    async def _by_product(self, product_id: str, client_id: str, message: wire.ProvisionRequest) -> Routed | Refused:
        """A catalogue product: its providers in rank order, and its amount rules."""
        route = await self.journal.db.run(catalogue_store.route(client_id, product_id))
        if route is None:
            reason = "not in this client's catalogue, or not valid today"
            detail = {"productId": product_id, "reason": reason}
            reply = error_reply(404, "TRANSACTION_DECLINED", "Unknown product", message.id, detail=detail)
            return Refused(reply, f"product {product_id}: {reason}")
        product, mappings = route
        amount, problem = _amount_for(product, message)
        if problem:
            reply = error_reply(404, "TRANSACTION_DECLINED", "Amount not allowed", message.id, detail=problem)
            return Refused(reply, f"field {problem['field']}: {problem['reason']}")
        candidates: list[tuple[SuvV1Adapter, str | None]] = [
            (self.adapters[p], code) for p, code in mappings if p in self.adapters
        ]
        if not candidates:
            reason = "no configured provider issues it"
            detail = {"productId": product_id, "reason": reason}
            reply = error_reply(503, "UPSTREAM_UNAVAILABLE", "No provider", message.id, detail=detail)
            return Refused(reply, f"product {product_id}: {reason}")
        currency = wire.currency_code(product.currency) if amount is not None else None
        return candidates, amount, currency

    async def _by_receiver(self, message: wire.ProvisionRequest) -> Routed | Refused:
        """No product (SUV allows it): the receiver institution names the provider, and the
        requested amount is the voucher's value; the provider judges it."""
        receiver_id = message.receiver.id if message.receiver else None
        requested = message.amounts.request_amount if message.amounts else None
        missing = [
            FieldError(field=field, error="is required when the provision has no product")
            for field, value in (("receiver.id", receiver_id), ("amounts.requestAmount", requested))
            if value is None
        ]
        if missing:
            return Refused(format_error(missing, message.id), field_reasons(missing))
        assert receiver_id is not None and requested is not None
        candidates: list[tuple[SuvV1Adapter, str | None]] = [
            (adapter, adapter.config.default_product_code)
            for adapter in self.adapters.values()
            if receiver_id in adapter.config.receiver_ids
        ]
        if not candidates:
            reason = "no voucher provider is configured for this receiver"
            detail = {"field": "receiver.id", "receiverId": receiver_id, "reason": reason}
            reply = error_reply(404, "TRANSACTION_DECLINED", "Unknown receiver", message.id, detail=detail)
            return Refused(reply, f"field receiver.id: {receiver_id}: {reason}")
        return candidates, requested.amount, wire.currency_code(requested.currency)

    async def _retry(
        self, client_id: str, provision_id: str, message: wire.ProvisionRequest, received: Message
    ) -> Reply:
        row = await self.journal.find(client_id, Kind.VOUCHER_PROVISION, provision_id)
        if row is None:
            # Never journalled, so never sent: issuing now cannot issue twice.
            return await self._provision(client_id, message, received, retail_id=provision_id)
        return await self.engine.retry(
            ops.RETRY,
            row,
            message,
            received,
            lambda: self.journal.find(client_id, Kind.VOUCHER_PROVISION, provision_id),
        )

    # --- the flow the engine runs ------------------------------------------------------------

    def moves_money(self, operation: SuvOperation) -> bool:
        return operation.kind is Kind.VOUCHER_PROVISION

    def has_goods(self, payload: dict[str, Any] | None) -> bool:
        return has_code(payload)

    def heard(self, adapter: SuvV1Adapter, answer: UpstreamAnswer) -> None:
        return None  # voucher providers are chosen by the catalogue, not by observed health

    def after_outcome(
        self,
        conn: Connection,
        operation: SuvOperation,
        tx_id: str,
        state: State,
        answer: UpstreamAnswer,
        adapter: SuvV1Adapter,
    ) -> None:
        kind = operation.kind
        if kind is Kind.VOUCHER_PROVISION:
            self.apply_provision_outcome(conn, tx_id, state, answer, adapter)
        elif state is State.DECLINED:
            store.undo_take(conn, tx_id)
        elif state is State.UNKNOWN and kind is not None:
            open_outcome_unknown(conn, tx_id, kind, f"provider {adapter.name}")

    def adapter(self, provider: str | None) -> SuvV1Adapter | None:
        return self.adapters.get(provider) if provider else None

    def retry_call(self, adapter: SuvV1Adapter, row: dict[str, Any]) -> UpstreamCall:
        return adapter.prepare(ops.RETRY, _decode(row["upstream_request"]), provision_id=row["id"])

    def cannot_retry(self, message: Any, row: dict[str, Any]) -> Reply:
        return error_reply(
            400,
            "VOUCHER_STATUS_UNKNOWN",
            "Retry not possible",
            message.id,
            detail={
                "reason": f"provider {row['provider']} cannot retry; the provision's outcome is unknown "
                "and is recorded as exposure; reverse it"
            },
        )

    def in_progress(self, message: Any) -> Reply:
        return error_reply(
            504, "VOUCHER_STATUS_UNKNOWN", "In progress", message.id, detail={"reason": "the provision is in flight"}
        )

    def apply_provision_outcome(
        self, conn: Connection, tx_id: str, state: State, answer: UpstreamAnswer, adapter: SuvV1Adapter
    ) -> None:
        """The voucher row after a provision's (or its retry's) answer; an unknown outcome is
        retrieved by store-and-forward where the provider can retry, and is exposure where not."""
        voucher = (answer.payload or {}).get("voucher") if answer.outcome is Outcome.SUCCESSFUL else None
        if isinstance(voucher, dict) and voucher.get("code"):
            issued = {
                State.REVERSED: VoucherState.REVERSED,
                State.CONFIRMED: VoucherState.CONFIRMED_PROVISIONED,
            }.get(state, VoucherState.PROVISIONED)
            store.set_voucher_state(
                conn,
                tx_id,
                issued,
                code=str(voucher["code"]),
                serial_number=voucher.get("serialNumber"),
                expiry=voucher.get("expiryDate"),
            )
            if state is State.REVERSED and not adapter.config.supports("advice"):
                open_exception(
                    conn,
                    tx_id,
                    "voucher_reversal_not_supported",
                    f"issued by {adapter.name} after the retailer reversed it; the provider cannot reverse",
                )
            return
        if state is State.UNKNOWN:
            if adapter.config.supports("retry"):
                self.queue_follow_up(conn, tx_id, adapter)
            else:
                open_exception(
                    conn,
                    tx_id,
                    "voucher_outcome_unknown",
                    f"provider {adapter.name} cannot retry; it may have issued the voucher",
                )

    def queue_follow_up(self, conn: Connection, tx_id: str, adapter: SuvV1Adapter) -> None:
        upstream = journal.upstream_request(conn, tx_id)
        call = adapter.prepare(ops.RETRY, _decode(upstream), provision_id=tx_id)
        queue_call(conn, QUEUE_PREFIX + adapter.name, tx_id, call)

    async def _duplicate(self, client_id: str, message_id: str) -> Reply:
        voucher = await self.journal.db.run(store.find_voucher(client_id, provision_id=message_id))
        detail = {"voucher": {"code": voucher["code"]}} if voucher and voucher["code"] else None
        return error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message_id, detail=detail)

    async def _refused_early(self, tx_id: str, message_id: str, kind: Kind, reversal_id: str) -> Reply:
        """The request's reversal came first: refuse it (§6.1), naming the reversal for
        redemptions and refunds as conforming servers do."""
        original = None if kind is Kind.VOUCHER_PROVISION else reversal_id
        reply = error_reply(
            400, ALREADY_REVERSED[REQUEST_NAME[kind]], "Already reversed", message_id, original_id=original
        )
        await self.journal.record_outcome(
            tx_id,
            None,
            [Message(RETAIL, "response", REQUEST_NAME[kind], reply.body.decode(), now_us(), status=reply.status)],
            state=State.DECLINED,
            retail_status=400,
            retail_response=reply.body.decode(),
            error_type=ALREADY_REVERSED[REQUEST_NAME[kind]],
        )
        return reply

    # --- redemptions and refunds ------------------------------------------------------------

    async def _redeem_or_refund(
        self, operation: SuvOperation, client_id: str, message: Any, received: Message
    ) -> Reply:
        assert operation.kind is not None
        event = ops.EVENT_OF[operation]
        code = message.voucher.code
        if not code:
            errors = [FieldError(field="voucher.code", error="is required")]
            return await self._refuse(
                received, client_id, message.id, format_error(errors, message.id), field_reasons(errors)
            )
        found = await self.journal.db.run(store.find_voucher(client_id, code=code))
        if found is None or found["state"] is None:
            reply = error_reply(404, "UNABLE_TO_LOCATE_RECORD", "Unknown voucher", message.id)
            return await self._refuse(received, client_id, message.id, reply, "unknown voucher")
        refusal = transition(VoucherState(found["state"]), event)
        if isinstance(refusal, Refusal):
            reply = error_reply(refusal.status, refusal.error_type, "Refused", message.id)
            reason = f"voucher is {found['state']}: no {event}"
            return await self._refuse(received, client_id, message.id, reply, reason)
        adapter = self.adapters.get(found["provider"])
        if adapter is None or not adapter.config.supports(CAPABILITY_OF[operation]):
            reason = f"provider {found['provider']} does not support {operation.name}"
            reply = error_reply(501, "FUNCTION_NOT_SUPPORTED", "Not supported", message.id, detail={"reason": reason})
            return await self._refuse(received, client_id, message.id, reply, reason)
        tx_id = str(uuid.uuid4())
        upstream = self._upstream_message(message, tx_id, found["provider_product_code"], None)
        call = adapter.prepare(operation, upstream)
        tx = NewTransaction(
            id=tx_id,
            client_id=client_id,
            retail_id=message.id,
            kind=operation.kind,
            state=State.SENT_UPSTREAM,
            amount=found["amount"],
            currency=found["currency"],
            provider=adapter.name,
            upstream_request=call.body.decode(),
            parent_id=found["id"],
        )
        # The voucher is taken and the request journalled in one commit, re-checked under lock.
        opened = await self.journal.db.run(store.take_and_open(tx, code, event, received, sent(call, adapter)))
        if isinstance(opened, Refusal):
            text = "Unknown voucher" if opened is store.UNKNOWN_VOUCHER else "Refused"
            reply = error_reply(opened.status, opened.error_type, text, message.id)
            return await self._refuse(received, client_id, message.id, reply, f"voucher refused {event}")
        if opened is None:
            reply = error_reply(400, "DUPLICATE_RECORD", "Duplicate id", message.id)
            return await self._refuse(received, client_id, message.id, reply, "retail id taken")
        if opened:
            return await self._refused_early(tx_id, message.id, operation.kind, opened)
        answer = await adapter.send(call)
        return await self.engine.conclude(operation, tx_id, message, call, answer, adapter)

    # --- advices ----------------------------------------------------------------------------

    async def _advise(self, operation: SuvOperation, client_id: str, message: Any, received: Message) -> Reply:
        assert operation.kind is not None and operation.event is not None and operation.request_kind is not None
        advice_id = str(uuid.uuid4())
        body = _encode(message)
        echo = mask_bytes(body)  # the advice echoed, its card number masked
        acknowledged = Message(RETAIL, "response", operation.name, echo.decode(), now_us(), status=202)
        advice = NewTransaction(
            id=advice_id, client_id=client_id, retail_id=message.id, kind=operation.kind, state=State.ACCEPTED
        )
        queued: list[bool] = []

        def deliver(conn: Connection, request: dict[str, Any], voucher: dict[str, Any] | None) -> None:
            if request["state"] == State.DECLINED:
                return  # nothing was done upstream: nothing to advise
            adapter = self.adapters.get(request["provider"])
            if adapter is None or not adapter.config.supports("advice"):
                if operation.event is not None and operation.event.is_reversal and request["state"] != State.REVERSED:
                    open_exception(
                        conn,
                        request["id"],
                        "voucher_reversal_not_supported",
                        f"provider {request['provider']} cannot reverse; the retailer reversed {request['retail_id']}",
                    )
                return
            upstream: dict[str, Any] = msgspec.to_builtins(message)
            upstream.update(id=advice_id, requestId=request["id"], time=rfc3339_now())
            call = adapter.prepare(operation, upstream)
            queue_call(conn, QUEUE_PREFIX + adapter.name, advice_id, call)
            queued.append(True)

        decision = await self.journal.db.run(
            store.advise(
                advice, operation.event, operation.request_kind, message.request_id, [received, acknowledged], deliver
            )
        )
        if queued:
            self.on_enqueued()
        if decision.status == 202:
            return Reply(202, echo)
        reply = error_reply(
            decision.status,
            decision.error_type or "GENERAL_ERROR",
            _ADVICE_TEXT.get(decision.status, "Refused"),
            message.id,
            original_id=decision.original_id,
        )
        reason = _unjournalled(decision, operation.event.is_reversal, message.request_id)
        return reply if reason is None else await self._refuse(received, client_id, message.id, reply, reason)

    # --- look-ups ---------------------------------------------------------------------------

    async def lookup(self, client_id: str, query: Mapping[str, str]) -> Reply:
        code = query.get("voucherCode")
        provision_id = query.get("provisionRequestId")
        if not code and not provision_id:
            return format_error([FieldError(field="voucherCode", error="is required (or provisionRequestId)")], None)
        voucher = await self.journal.db.run(store.find_voucher(client_id, code=code, provision_id=provision_id))
        if voucher is None or voucher["state"] is None:
            return error_reply(404, "UNABLE_TO_LOCATE_RECORD", "Unknown voucher", None)
        issued = _decode(voucher["retail_response"]) if voucher["retail_response"] else {}
        body: dict[str, Any] = {
            key: issued[key] for key in ("settlementEntity", "receiver", "thirdPartyIdentifiers") if key in issued
        }
        body["voucher"] = {**issued.get("voucher", {}), "code": voucher["code"]}
        if voucher["product_code"] is not None:
            body["product"] = {"productId": voucher["product_code"]}
        if voucher["amount"] is not None:
            body["amounts"] = {"approvedAmount": {"amount": voucher["amount"], "currency": voucher["currency"]}}
        return Reply(200, _encode(body))

    # --- messages -----------------------------------------------------------------------------

    def retail_reply(
        self, operation: SuvOperation, message: Any, tx_id: str, answer: UpstreamAnswer
    ) -> tuple[Reply, str | None]:
        if answer.outcome is Outcome.SUCCESSFUL and answer.payload is not None:
            return Reply(operation.success_status, _encode(self._echo(answer.payload, message, tx_id))), None
        if answer.outcome is Outcome.UNKNOWN:
            return error_reply(
                504,
                "VOUCHER_STATUS_UNKNOWN",
                "Outcome unknown",
                message.id,
                detail={"reason": answer.transport_error or f"provider answered HTTP {answer.status}"},
            ), None
        if not answer.delivered or answer.status not in PASSED_THROUGH:
            reply = error_reply(
                503,
                "UPSTREAM_UNAVAILABLE",
                "Provider unavailable",
                message.id,
                detail={"reason": answer.transport_error or f"provider answered HTTP {answer.status}"},
            )
            return reply, "UPSTREAM_UNAVAILABLE"
        assert answer.status is not None
        payload = answer.payload or {}
        error_type = answer.error_type if answer.error_type in wire.ERROR_TYPES else "TRANSACTION_DECLINED"
        text = payload.get("errorMessage")
        detail = payload.get("detailMessage")
        reply = error_reply(
            answer.status,
            error_type,
            text if isinstance(text, str) else error_type,
            message.id,
            detail=detail if isinstance(detail, dict) else None,
        )
        return reply, error_type

    def _upstream_message(
        self, message: Any, tx_id: str, provider_code: str | None, amount: int | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(message)
        out["id"] = tx_id
        out["time"] = rfc3339_now()
        out["client"] = {"id": self.institution.id, "name": self.institution.name}
        out["thirdPartyIdentifiers"] = [*out["thirdPartyIdentifiers"], self._our_identifier(tx_id)]
        if provider_code is not None:
            out["product"] = {**out.get("product", {}), "productId": provider_code}
        if amount is not None and isinstance(message, wire.ProvisionRequest):
            amounts = out.setdefault("amounts", {})
            amounts.setdefault("requestAmount", {"amount": amount, "currency": "710"})
        return out

    def _our_identifier(self, tx_id: str) -> dict[str, str]:
        return {"institutionId": self.institution.id, "transactionIdentifier": tx_id}

    def _echo(self, payload: dict[str, Any], message: Any, tx_id: str) -> dict[str, Any]:
        """The provider's answer with our retailer's own echo fields put back (§1.6)."""
        return echo(payload, msgspec.to_builtins(message), self._our_identifier(tx_id), (*ECHO_FIELDS, "product"))

    def restamp(self, stored: str, message: Any) -> bytes:
        return _encode(restamp(_decode(stored), msgspec.to_builtins(message), message.id))


_ADVICE_TEXT = {404: "Unknown request", 400: "Refused"}


def _unjournalled(decision: store.AdviceDecision, is_reversal: bool, request_id: str) -> str | None:
    """Why a refused advice left no transaction behind (None: it was journalled as one, as a
    judged refusal or a reversal remembered for its request)."""
    if decision.error_type == "DUPLICATE_RECORD":
        return "advice id taken"
    if decision.request is None and not is_reversal:
        return f"no request {request_id} to advise"
    return None


def _amount_for(product: Any, message: wire.ProvisionRequest) -> tuple[int | None, dict[str, Any] | None]:
    """The amount to issue: a fixed product's own, or the requested one within its range."""
    requested = message.amounts.request_amount.amount if message.amounts and message.amounts.request_amount else None
    if product.fixed_value:
        if requested is not None and requested != product.amount:
            return None, {"field": "amounts.requestAmount.amount", "reason": f"fixed-value product: {product.amount}"}
        return product.amount, None
    if requested is None:
        return None, {"field": "amounts.requestAmount", "reason": "variable-value product: an amount is required"}
    if not product.min_amount <= requested <= product.max_amount:
        return None, {
            "field": "amounts.requestAmount.amount",
            "reason": f"must be between {product.min_amount} and {product.max_amount}",
        }
    return requested, None


def open_outcome_unknown(conn: Connection, tx_id: str, kind: Kind, detail: str) -> None:
    """A redemption or refund whose outcome is not known: its voucher stays taken until an
    advice or an operator settles it."""
    open_exception(conn, tx_id, f"{REQUEST_NAME[kind]}_outcome_unknown", detail)


def has_code(payload: dict[str, Any] | None) -> bool:
    """A voucher is sold with its code; a success without one is not yet known."""
    voucher = payload.get("voucher") if payload else None
    return isinstance(voucher, dict) and bool(voucher.get("code"))
