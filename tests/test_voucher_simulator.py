"""The simulated voucher providers (`xhuma simulate vouchers`), run as real processes and driven
over HTTP the way the switch drives them: the SUV v1 life cycles, every row of the error matrix
of a conforming voucher server (reference §6.2), strict decoding, Stellr's refusals, and the
fault injection the switch's tests rely on. No database is involved."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Server, base_message, free_port, new_id, now, process_env, xhuma


class Provider:
    """One Basic-auth user of a simulated provider: a fresh user per test keeps tests apart,
    since the provider partitions everything by user."""

    def __init__(self, server: Server, user: str | None = None, timeout: float = 10.0) -> None:
        self.server = server
        self.user = user or f"xhuma-{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(base_url=server.url + "/suv/v1", auth=(self.user, "pw"), timeout=timeout)

    def request(self, **fields: Any) -> dict[str, Any]:
        return base_message(self.user, **fields)

    def provision(
        self, product: str = "VCH-GIFT-100", amount: int | None = None, **fields: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(product={"productId": product}, **fields)
        if amount is not None:
            body["amounts"] = {"requestAmount": {"amount": amount, "currency": 710}}
        return body, self.http.post("/vouchers", json=body)

    def advice(self, path: str, request_id: str, **fields: Any) -> tuple[dict[str, Any], httpx.Response]:
        body = {"id": new_id(), "requestId": request_id, "time": now(), "thirdPartyIdentifiers": [], **fields}
        return body, self.http.post(path, json=body)

    def confirm(self, request_id: str, path: str = "/vouchers/confirmations") -> tuple[dict[str, Any], httpx.Response]:
        if path == "/vouchers/confirmations":
            tenders = [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}]
            return self.advice(path, request_id, tenders=tenders)
        return self.advice(path, request_id)

    def reverse(self, request_id: str, path: str = "/vouchers/reversals") -> tuple[dict[str, Any], httpx.Response]:
        return self.advice(path, request_id, reversalReason="CANCELLED")

    def redeem(self, code: str, **fields: Any) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(voucher={"code": code}, **fields)
        return body, self.http.post("/redemptions", json=body)

    def refund(self, code: str) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(voucher={"code": code})
        return body, self.http.post("/refunds", json=body)

    def issued(self) -> tuple[dict[str, Any], str]:
        """A provisioned and confirmed voucher: its request and code."""
        request, answer = self.provision()
        assert answer.status_code == 201, answer.text
        assert self.confirm(request["id"])[1].status_code == 202
        return request, str(answer.json()["voucher"]["code"])

    def redeemed(self) -> tuple[str, str]:
        """A voucher redeemed and the redemption confirmed: the code and the redemption id."""
        _, code = self.issued()
        redemption, answer = self.redeem(code)
        assert answer.status_code == 201, answer.text
        assert self.confirm(redemption["id"], "/redemptions/confirmations")[1].status_code == 202
        return code, redemption["id"]


def ledger(server: Server) -> dict[str, Any]:
    return dict(httpx.get(server.url + "/_sim/ledger").json())


def configure(server: Server, **changes: Any) -> dict[str, Any]:
    answer = httpx.post(server.url + "/_sim/config", json=changes)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def refused(answer: httpx.Response, status: int, error_type: str, message_id: str) -> dict[str, Any]:
    """The error body, after checking the status, the error type and the id it names."""
    assert (answer.status_code, answer.json()["errorType"]) == (status, error_type), answer.text
    body: dict[str, Any] = answer.json()
    assert body["id"] == message_id
    return body


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    folder = tmp_path_factory.mktemp("voucher-simulators")
    started: dict[str, Server] = {}
    try:
        for name, kind in (("vouchr", "full"), ("stellr", "stellr")):
            port = free_port()
            args = ["simulate", "vouchers", "--port", str(port), "--name", name, "--kind", kind, "--seed", "11"]
            started[kind] = Server(args, port, process_env(), folder / f"{name}.log")
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def full(servers: dict[str, Server]) -> Provider:
    return Provider(servers["full"])


@pytest.fixture
def stellr(servers: dict[str, Server]) -> Provider:
    return Provider(servers["stellr"])


@pytest.fixture
def restore(servers: dict[str, Server]) -> Iterator[None]:
    """Puts both simulators back to normal after a test that injects faults."""
    yield
    for server in servers.values():
        configure(server, mode="normal", latency_ms=0, lose_responses=0)


# --- provisions --------------------------------------------------------------------------------


def test_a_provision_echoes_the_request_and_issues_a_voucher_that_is_confirmed(full: Provider) -> None:
    issued_before = ledger(full.server)["issued"]
    settlement = {"id": "33333333", "name": "TransactionsRUs"}
    receiver = {"id": "44444444", "name": "Vouchers Inc"}
    request, answer = full.provision(settlementEntity=settlement, receiver=receiver)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    for echoed in ("id", "time", "originator", "client", "settlementEntity", "receiver", "product"):
        assert body[echoed] == request[echoed]
    assert body["thirdPartyIdentifiers"][0] == request["thirdPartyIdentifiers"][0]
    assert body["thirdPartyIdentifiers"][1]["institutionId"] == "vouchr"
    assert body["voucher"]["code"].isdigit() and body["voucher"]["serialNumber"].startswith("VOUCHR")
    assert body["voucher"]["expiryDate"].endswith("Z") and body["voucher"]["redeemInstructions"]
    assert body["amounts"]["approvedAmount"] == {"amount": 10000, "currency": "710"}
    assert body["slipData"]["messageLines"]
    provider_side = ledger(full.server)
    assert provider_side["issued"] == issued_before + 1
    assert provider_side["provisions"][request["id"]] == {
        "code": body["voucher"]["code"],
        "amount": 10000,
        "product": "VCH-GIFT-100",
        "retries": 0,
        "state": "provisioned",
    }
    advice, confirmed = full.confirm(request["id"])
    assert confirmed.status_code == 202 and confirmed.json() == advice
    assert ledger(full.server)["vouchers"][body["voucher"]["code"]] == "confirmed_provisioned"


def test_a_supplied_voucher_code_is_echoed_not_generated(full: Provider) -> None:
    code = f"SUPPLIED{uuid.uuid4().hex[:8]}"
    request, answer = full.provision(voucher={"code": code})
    assert answer.status_code == 201 and answer.json()["voucher"] == {"code": code}
    again, clash = full.provision(voucher={"code": code})
    body = refused(clash, 400, "DUPLICATE_RECORD", again["id"])
    assert body["detailMessage"]["voucher"]["code"] == code


def test_trailing_slash_paths_are_served(full: Provider) -> None:
    request = full.request(product={"productId": "VCH-AIR-10"})
    answer = full.http.post("/vouchers/", json=request)
    assert answer.status_code == 201, answer.text
    code = answer.json()["voucher"]["code"]
    full.confirm(request["id"])
    redemption = full.request(voucher={"code": code})
    assert full.http.post("/redemptions/", json=redemption).status_code == 201
    full.confirm(redemption["id"], "/redemptions/confirmations")
    assert full.http.post("/refunds/", json=full.request(voucher={"code": code})).status_code == 201


@pytest.mark.parametrize(
    ("product", "amount", "issued_amount"),
    [("VCH-STREAM", 5000, 5000), ("VCH-STREAM", 50000, 50000), ("VCH-BUS", 1234, 1234), ("VCH-GAME-250", 25000, 25000)],
)
def test_amounts_a_product_sells(full: Provider, product: str, amount: int, issued_amount: int) -> None:
    request, answer = full.provision(product, amount)
    assert answer.status_code == 201, answer.text
    assert ledger(full.server)["provisions"][request["id"]]["amount"] == issued_amount


@pytest.mark.parametrize(
    ("product", "amount", "currency", "reason"),
    [
        ("NO-SUCH-THING", None, 710, "unknown product NO-SUCH-THING"),
        ("VCH-STREAM", 4999, 710, "amount 4999 is outside 5000 to 50000 cents for product VCH-STREAM"),
        ("VCH-STREAM", 50001, 710, "amount 50001 is outside 5000 to 50000 cents for product VCH-STREAM"),
        ("VCH-STREAM", None, 710, "product VCH-STREAM needs amounts.requestAmount (5000 to 50000 cents)"),
        ("VCH-GIFT-100", 5000, 710, "product VCH-GIFT-100 is fixed at 10000 cents, 5000 requested"),
        ("VCH-GIFT-100", 10000, "840", "product VCH-GIFT-100 is sold in currency 710 only"),
        ("STL-GIFT-50", None, 710, "unknown product STL-GIFT-50"),  # another provider's product
    ],
)
def test_a_provision_the_provider_cannot_sell_is_a_hard_decline_that_issues_nothing(
    full: Provider, product: str, amount: int | None, currency: int | str, reason: str
) -> None:
    issued_before = ledger(full.server)["issued"]
    request = full.request(product={"productId": product})
    if amount is not None:
        request["amounts"] = {"requestAmount": {"amount": amount, "currency": currency}}
    body = refused(full.http.post("/vouchers", json=request), 404, "TRANSACTION_DECLINED", request["id"])
    assert body["errorMessage"] == reason and "originalId" not in body
    assert ledger(full.server)["issued"] == issued_before
    assert request["id"] not in ledger(full.server)["provisions"]


def test_each_provider_lists_its_own_products(full: Provider, stellr: Provider) -> None:
    for provider, prefix in ((full, "VCH-"), (stellr, "STL-")):
        answer = provider.http.get("/products")
        assert answer.status_code == 200
        products = answer.json()["products"]
        assert len(products) >= 6 and all(p["productId"].startswith(prefix) for p in products)
        for product in products:
            if product["isFixedValue"]:
                assert product["amount"]["currency"] == "710" and product["amount"]["amount"] > 0
            else:
                assert product["minAmount"]["amount"] < product["maxAmount"]["amount"]
        assert {p["isFixedValue"] for p in products} == {True, False}
    assert httpx.get(full.server.url + "/suv/v1/products").status_code == 401


def test_a_voucher_is_looked_up_by_code_or_provision_id_by_its_own_client_only(
    full: Provider, servers: dict[str, Server]
) -> None:
    request, code = full.issued()
    for query in ({"voucherCode": code}, {"provisionRequestId": request["id"]}):
        answer = full.http.get("/vouchers", params=query)
        assert answer.status_code == 200, answer.text
        assert answer.json()["voucher"]["code"] == code
        assert answer.json()["product"] == {"productId": "VCH-GIFT-100"}
    mismatched = full.http.get("/vouchers", params={"voucherCode": "1", "provisionRequestId": request["id"]})
    assert mismatched.status_code == 404
    assert full.http.get("/vouchers", params={"voucherCode": "0000"}).status_code == 404
    assert full.http.get("/vouchers").status_code == 400
    stranger = Provider(servers["full"])
    assert stranger.http.get("/vouchers", params={"voucherCode": code}).status_code == 404


# --- authentication and strict decoding --------------------------------------------------------


def test_provision_under_another_clients_name_is_an_authentication_error(full: Provider) -> None:
    request = base_message("someone-else", product={"productId": "VCH-GIFT-100"})
    body = refused(full.http.post("/vouchers", json=request), 400, "AUTHENTICATION_ERROR", request["id"])
    assert "originalId" not in body
    redemption = base_message("someone-else", voucher={"code": "123"})
    refused(full.http.post("/redemptions", json=redemption), 400, "AUTHENTICATION_ERROR", redemption["id"])
    refund = base_message("someone-else", voucher={"code": "123"})
    refused(full.http.post("/refunds", json=refund), 400, "AUTHENTICATION_ERROR", refund["id"])


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Basic !!!", "Basic " + "dXNlcg=="])
def test_missing_or_invalid_basic_auth_is_401(full: Provider, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    request = full.request(product={"productId": "VCH-GIFT-100"})
    answer = httpx.post(full.server.url + "/suv/v1/vouchers", json=request, headers=headers)
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    assert answer.json()["errorType"] == "AUTHENTICATION_ERROR"


def test_data_is_partitioned_per_user(full: Provider, servers: dict[str, Server]) -> None:
    request, _ = full.provision()
    stranger = Provider(servers["full"])
    advice, answer = stranger.confirm(request["id"])
    refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", advice["id"])
    # The same id is nobody else's duplicate.
    mine = {**request, "client": {"id": stranger.user, "name": "Other"}}
    assert stranger.http.post("/vouchers", json=mine).status_code == 201


@pytest.mark.parametrize(
    ("path", "mutate", "field", "msg"),
    [
        ("/vouchers", lambda m: m.update(unexpected=1), "unexpected", "Unrecognized field 'unexpected'"),
        (
            "/vouchers",
            lambda m: m["originator"]["merchant"].update(colour="red"),
            "originator.merchant.colour",
            "Unrecognized field 'originator.merchant.colour'",
        ),
        (
            "/vouchers",
            lambda m: m["originator"]["merchant"]["merchantName"].pop("city"),
            "originator.merchant.merchantName.city",
            "originator.merchant.merchantName.city may not be null",
        ),
        (
            "/vouchers",
            lambda m: m["originator"]["merchant"]["merchantName"].update(city=None),
            "originator.merchant.merchantName.city",
            "originator.merchant.merchantName.city may not be null",
        ),
        (
            "/vouchers",
            lambda m: m["thirdPartyIdentifiers"][0].pop("institutionId"),
            "thirdPartyIdentifiers[0].institutionId",
            "thirdPartyIdentifiers[0].institutionId may not be null",
        ),
        (
            "/vouchers",
            lambda m: m["thirdPartyIdentifiers"][0].pop("transactionIdentifier"),
            "thirdPartyIdentifiers[0].transactionIdentifier",
            "thirdPartyIdentifiers[0].transactionIdentifier may not be null",
        ),
        (
            "/vouchers",
            lambda m: m.update(id="not-a-uuid"),
            "id",
            "UUID must conform to the format 8-4-4-4-12 hexadecimal values",
        ),
        ("/vouchers", lambda m: m.pop("product"), "product.productId", "product.productId may not be null"),
        ("/redemptions", lambda m: m.pop("voucher"), "voucher", "voucher may not be null"),
        ("/redemptions", lambda m: m.update(voucher={}), "voucher.code", "voucher.code may not be null"),
        ("/refunds", lambda m: m.pop("client"), "client", "client may not be null"),
    ],
)
def test_malformed_requests_are_format_errors_naming_the_field(
    full: Provider, path: str, mutate: Callable[[dict[str, Any]], Any], field: str, msg: str
) -> None:
    issued_before = ledger(full.server)["issued"]
    message = full.request(product={"productId": "VCH-GIFT-100"}, voucher={"code": "123"})
    if path == "/vouchers":
        message.pop("voucher")
    else:
        message.pop("product")
    mutate(message)
    answer = full.http.post(path, json=message)
    assert (answer.status_code, answer.json()["errorType"]) == (400, "FORMAT_ERROR"), answer.text
    assert answer.json()["errorMessage"] == "Bad formatting."
    assert {"field": field, "msg": msg} in [
        {"field": e["field"], "msg": e["msg"]} for e in answer.json()["detailMessage"]["formatErrors"]
    ]
    assert ledger(full.server)["issued"] == issued_before


@pytest.mark.parametrize(
    ("path", "mutate", "msg"),
    [
        ("/vouchers/reversals", lambda m: m.pop("reversalReason"), "reversalReason may not be null"),
        ("/vouchers/reversals", lambda m: m.pop("requestId"), "requestId may not be null"),
        ("/vouchers/reversals", lambda m: m.update(extra=True), "Unrecognized field 'extra'"),
        (
            "/vouchers/confirmations",
            lambda m: m.update(tenders=[{"tenderType": "CASH", "amount": {"amount": 1}}]),
            "tenders[0].amount.currency may not be null",
        ),
    ],
)
def test_malformed_advices_are_format_errors(
    full: Provider, path: str, mutate: Callable[[dict[str, Any]], Any], msg: str
) -> None:
    request, _ = full.provision()
    advice = {
        "id": new_id(),
        "requestId": request["id"],
        "time": now(),
        "thirdPartyIdentifiers": [],
        "reversalReason": "CANCELLED",
    }
    if path.endswith("confirmations"):
        advice.pop("reversalReason")
    mutate(advice)
    answer = full.http.post(path, json=advice)
    assert (answer.status_code, answer.json()["errorType"]) == (400, "FORMAT_ERROR"), answer.text
    assert msg in [e["msg"] for e in answer.json()["detailMessage"]["formatErrors"]]
    assert ledger(full.server)["vouchers"][ledger(full.server)["provisions"][request["id"]]["code"]] == "provisioned"


# --- the error matrix of a conforming voucher server (§6.2), row by row ------------------------


def test_reverse_never_provisioned_voucher_then_its_provision_is_refused(full: Provider) -> None:
    issued_before = ledger(full.server)["issued"]
    request = full.request(product={"productId": "VCH-GIFT-100"})
    reversal, answer = full.reverse(request["id"])
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", reversal["id"])["originalId"] == request["id"]
    body = refused(full.http.post("/vouchers", json=request), 400, "VOUCHER_ALREADY_REVERSED", request["id"])
    assert "originalId" not in body
    assert ledger(full.server)["issued"] == issued_before
    # Sent again, it is a duplicate: the id was taken by the refused request.
    refused(full.http.post("/vouchers", json=request), 400, "DUPLICATE_RECORD", request["id"])


def test_confirm_never_provisioned_voucher(full: Provider) -> None:
    request_id = new_id()
    advice, answer = full.confirm(request_id)
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", advice["id"])["originalId"] == request_id
    # A confirmation is not remembered the way a reversal is.
    request = {**full.request(product={"productId": "VCH-GIFT-100"}), "id": request_id}
    assert full.http.post("/vouchers", json=request).status_code == 201


def test_reverse_a_confirmed_voucher(full: Provider) -> None:
    request, code = full.issued()
    reversal, answer = full.reverse(request["id"])
    assert refused(answer, 400, "VOUCHER_ALREADY_CONFIRMED", reversal["id"])["originalId"] == request["id"]
    assert ledger(full.server)["vouchers"][code] == "confirmed_provisioned"


def test_confirm_a_reversed_voucher(full: Provider) -> None:
    request, answer = full.provision()
    code = answer.json()["voucher"]["code"]
    reversal, reversed_ = full.reverse(request["id"])
    assert reversed_.status_code == 202 and reversed_.json() == reversal
    advice, confirmed = full.confirm(request["id"])
    assert refused(confirmed, 400, "VOUCHER_ALREADY_REVERSED", advice["id"])["originalId"] == request["id"]
    assert ledger(full.server)["vouchers"][code] == "reversed"
    # A reversed voucher cannot be redeemed.
    redemption, redeemed = full.redeem(code)
    refused(redeemed, 400, "VOUCHER_NOT_REDEEMABLE", redemption["id"])


def test_duplicate_provision_including_after_reversal(full: Provider) -> None:
    request, answer = full.provision()
    code = answer.json()["voucher"]["code"]
    issued_after_first = ledger(full.server)["issued"]
    for _ in range(2):
        body = refused(full.http.post("/vouchers", json=request), 400, "DUPLICATE_RECORD", request["id"])
        assert body["detailMessage"]["voucher"]["code"] == code and "originalId" not in body
        assert full.reverse(request["id"])[1].status_code == 202
    assert ledger(full.server)["issued"] == issued_after_first


def test_duplicate_advice_id(full: Provider) -> None:
    request, _ = full.provision()
    advice, answer = full.confirm(request["id"])
    assert answer.status_code == 202
    again = full.http.post("/vouchers/confirmations", json=advice)
    assert refused(again, 400, "DUPLICATE_RECORD", advice["id"])["originalId"] == request["id"]


def test_redeem_unconfirmed_voucher(full: Provider) -> None:
    _, answer = full.provision()
    redemption, redeemed = full.redeem(answer.json()["voucher"]["code"])
    assert "originalId" not in refused(redeemed, 400, "VOUCHER_NOT_REDEEMABLE", redemption["id"])


def test_redeem_unknown_voucher(full: Provider) -> None:
    redemption, redeemed = full.redeem("999999")
    refused(redeemed, 404, "UNABLE_TO_LOCATE_RECORD", redemption["id"])


def test_reverse_unknown_redemption_then_redeem_after_its_reversal(full: Provider) -> None:
    _, code = full.issued()
    redemption = full.request(voucher={"code": code})
    reversal, answer = full.reverse(redemption["id"], "/redemptions/reversals")
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", reversal["id"])["originalId"] == redemption["id"]
    late = full.http.post("/redemptions", json=redemption)
    assert refused(late, 400, "REDEMPTION_ALREADY_REVERSED", redemption["id"])["originalId"] == reversal["id"]
    # The refused redemption left the voucher redeemable.
    assert full.redeem(code)[1].status_code == 201


def test_confirm_unknown_redemption(full: Provider) -> None:
    redemption_id = new_id()
    advice, answer = full.confirm(redemption_id, "/redemptions/confirmations")
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", advice["id"])["originalId"] == redemption_id


def test_second_redemption_of_a_redeemed_voucher(full: Provider) -> None:
    _, code = full.issued()
    assert full.redeem(code)[1].status_code == 201
    second, answer = full.redeem(code)
    assert "originalId" not in refused(answer, 400, "VOUCHER_ALREADY_REDEEMED", second["id"])


def test_duplicate_redemption_confirmation(full: Provider) -> None:
    _, redemption_id = full.redeemed()
    advice, answer = full.confirm(redemption_id, "/redemptions/confirmations")
    assert refused(answer, 400, "VOUCHER_NOT_REDEEMED", advice["id"])["originalId"] == redemption_id


def test_reverse_confirmed_redemption(full: Provider) -> None:
    code, redemption_id = full.redeemed()
    reversal, answer = full.reverse(redemption_id, "/redemptions/reversals")
    assert refused(answer, 400, "REDEMPTION_ALREADY_CONFIRMED", reversal["id"])["originalId"] == redemption_id
    assert ledger(full.server)["vouchers"][code] == "confirmed_redeemed"


def test_refund_before_redemption_confirmed(full: Provider) -> None:
    _, code = full.issued()
    assert full.redeem(code)[1].status_code == 201
    refund, answer = full.refund(code)
    assert "originalId" not in refused(answer, 400, "REDEMPTION_NOT_CONFIRMED", refund["id"])


def test_duplicate_refund(full: Provider) -> None:
    code, _ = full.redeemed()
    assert full.refund(code)[1].status_code == 201
    second, answer = full.refund(code)
    assert "originalId" not in refused(answer, 400, "VOUCHER_ALREADY_REFUNDED", second["id"])


def test_refund_after_refund_confirmed(full: Provider) -> None:
    code, _ = full.redeemed()
    refund, _ = full.refund(code)
    assert full.confirm(refund["id"], "/refunds/confirmations")[1].status_code == 202
    second, answer = full.refund(code)
    assert "originalId" not in refused(answer, 400, "VOUCHER_NOT_REDEEMED", second["id"])


def test_reverse_unknown_refund_then_refund_with_that_id(full: Provider) -> None:
    code, _ = full.redeemed()
    refund = full.request(voucher={"code": code})
    reversal, answer = full.reverse(refund["id"], "/refunds/reversals")
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", reversal["id"])["originalId"] == refund["id"]
    late = full.http.post("/refunds", json=refund)
    assert refused(late, 400, "REFUND_ALREADY_REVERSED", refund["id"])["originalId"] == reversal["id"]
    assert ledger(full.server)["vouchers"][code] == "confirmed_redeemed"


def test_reverse_confirmed_refund(full: Provider) -> None:
    code, _ = full.redeemed()
    refund, _ = full.refund(code)
    assert full.confirm(refund["id"], "/refunds/confirmations")[1].status_code == 202
    reversal, answer = full.reverse(refund["id"], "/refunds/reversals")
    assert refused(answer, 400, "REFUND_ALREADY_CONFIRMED", reversal["id"])["originalId"] == refund["id"]


# --- life cycles ---------------------------------------------------------------------------------


def test_redemption_and_refund_life_cycle_makes_the_voucher_redeemable_again(full: Provider) -> None:
    _, code = full.issued()
    redemption, redeemed = full.redeem(code)
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["voucher"] == {"code": code} and redeemed.json()["id"] == redemption["id"]
    assert redeemed.json()["amounts"]["approvedAmount"]["amount"] == 10000
    assert len(redeemed.json()["thirdPartyIdentifiers"]) == 2
    assert ledger(full.server)["vouchers"][code] == "redeemed"
    advice, confirmed = full.confirm(redemption["id"], "/redemptions/confirmations")
    assert confirmed.status_code == 202 and confirmed.json() == advice
    refund, refunded = full.refund(code)
    assert refunded.status_code == 201 and ledger(full.server)["vouchers"][code] == "refunded"
    assert full.confirm(refund["id"], "/refunds/confirmations")[1].status_code == 202
    assert ledger(full.server)["vouchers"][code] == "confirmed_provisioned"
    again, redeemed_again = full.redeem(code)
    assert redeemed_again.status_code == 201
    # An advice for the first, settled redemption does not touch the second one.
    late, answer = full.reverse(redemption["id"], "/redemptions/reversals")
    assert refused(answer, 400, "REDEMPTION_ALREADY_CONFIRMED", late["id"])["originalId"] == redemption["id"]
    assert ledger(full.server)["vouchers"][code] == "redeemed"
    assert full.reverse(again["id"], "/redemptions/reversals")[1].status_code == 202
    provider_side = ledger(full.server)
    assert provider_side["vouchers"][code] == "confirmed_provisioned"
    assert provider_side["redemptions"][redemption["id"]]["state"] == "confirmed_redeemed"
    assert provider_side["refunds"][refund["id"]]["state"] == "confirmed_provisioned"


def test_a_reversed_refund_puts_the_voucher_back_to_redeemed_and_it_can_be_refunded_again(full: Provider) -> None:
    code, _ = full.redeemed()
    refund, refunded = full.refund(code)
    assert refunded.status_code == 201
    reversal, reversed_ = full.reverse(refund["id"], "/refunds/reversals")
    assert reversed_.status_code == 202 and reversed_.json() == reversal
    assert ledger(full.server)["vouchers"][code] == "confirmed_redeemed"
    advice, answer = full.confirm(refund["id"], "/refunds/confirmations")
    assert refused(answer, 400, "VOUCHER_NOT_REFUNDED", advice["id"])["originalId"] == refund["id"]
    assert full.refund(code)[1].status_code == 201


def test_advices_name_a_request_of_their_own_kind(full: Provider) -> None:
    request, _ = full.provision()
    advice, answer = full.confirm(request["id"], "/redemptions/confirmations")
    assert refused(answer, 404, "UNABLE_TO_LOCATE_RECORD", advice["id"])["originalId"] == request["id"]


# --- Stellr --------------------------------------------------------------------------------------


def test_stellr_issues_vouchers_and_refuses_everything_else_with_501(stellr: Provider) -> None:
    request, answer = stellr.provision("STL-GIFT-50")
    assert answer.status_code == 201, answer.text
    code = answer.json()["voucher"]["code"]
    assert answer.json()["thirdPartyIdentifiers"][-1]["institutionId"] == "stellr"
    calls = [
        stellr.confirm(request["id"]),
        stellr.reverse(request["id"]),
        stellr.redeem(code),
        stellr.refund(code),
        stellr.confirm(new_id(), "/redemptions/confirmations"),
        stellr.reverse(new_id(), "/redemptions/reversals"),
        stellr.confirm(new_id(), "/refunds/confirmations"),
        stellr.reverse(new_id(), "/refunds/reversals"),
        (request, stellr.http.post(f"/vouchers/{request['id']}/retry", json=request)),
    ]
    for message, refusal in calls:
        refused(refusal, 501, "FUNCTION_NOT_SUPPORTED", message["id"])
    provider_side = ledger(stellr.server)
    assert not provider_side["advices"] and provider_side["provisions"][request["id"]]["retries"] == 0
    assert provider_side["vouchers"][code] == "provisioned"
    assert stellr.provision("VCH-GIFT-100")[1].status_code == 404  # the full provider's product


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("restore")
def test_a_lost_response_still_issued_and_a_retry_returns_the_same_voucher(full: Provider) -> None:
    assert configure(full.server, lose_responses=1)["lose_responses"] == 1
    impatient = Provider(full.server, full.user, timeout=1.0)
    request = full.request(
        product={"productId": "VCH-STREAM"}, amounts={"requestAmount": {"amount": 7000, "currency": 710}}
    )
    issued_before = ledger(full.server)["issued"]
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        impatient.http.post("/vouchers", json=request)
    assert time.monotonic() - started < 5
    provider_side = ledger(full.server)
    assert provider_side["issued"] == issued_before + 1
    code = provider_side["provisions"][request["id"]]["code"]
    assert configure(full.server)["lose_responses"] == 0
    for attempt in (1, 2):
        retried = full.http.post(f"/vouchers/{request['id']}/retry", json=request)
        assert retried.status_code == 201, retried.text
        assert retried.json()["voucher"]["code"] == code and retried.json()["id"] == request["id"]
        assert ledger(full.server)["provisions"][request["id"]]["retries"] == attempt
    assert ledger(full.server)["issued"] == issued_before + 1
    refused(full.http.post("/vouchers", json=request), 400, "DUPLICATE_RECORD", request["id"])
    assert full.confirm(request["id"])[1].status_code == 202


def test_a_retry_of_a_provision_never_seen_provisions_it_once(full: Provider) -> None:
    issued_before = ledger(full.server)["issued"]
    request = full.request(product={"productId": "VCH-MEAL-50"})
    first = full.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert first.status_code == 201, first.text
    second = full.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert second.json()["voucher"] == first.json()["voucher"]
    assert ledger(full.server)["issued"] == issued_before + 1
    early = full.request(product={"productId": "VCH-MEAL-50"})
    assert full.reverse(early["id"])[1].status_code == 404
    late = full.http.post(f"/vouchers/{early['id']}/retry", json=early)
    refused(late, 400, "VOUCHER_ALREADY_REVERSED", early["id"])
    assert ledger(full.server)["issued"] == issued_before + 1


@pytest.mark.usefixtures("restore")
def test_unavailable_garbage_and_hang_modes(full: Provider) -> None:
    configure(full.server, mode="unavailable")
    request, answer = full.provision()
    assert answer.status_code == 503 and answer.json()["errorType"] == "UPSTREAM_UNAVAILABLE"
    assert httpx.get(full.server.url + "/health").status_code == 503
    configure(full.server, mode="garbage")
    garbage = full.http.post("/vouchers", json=request)
    assert garbage.status_code == 200 and garbage.headers["content-type"].startswith("text/html")
    configure(full.server, mode="hang")
    with pytest.raises(httpx.ReadTimeout):
        Provider(full.server, full.user, timeout=0.5).http.post("/vouchers", json=request)
    assert request["id"] not in ledger(full.server)["provisions"]
    # A request held by the hang is answered once the mode changes back.
    results: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: results.append(full.http.post("/vouchers", json=request)))
    waiter.start()
    time.sleep(0.3)
    assert not results
    configure(full.server, mode="normal")
    waiter.join(timeout=10)
    assert results and results[0].status_code == 201, results
    assert httpx.get(full.server.url + "/health").status_code == 200


@pytest.mark.usefixtures("restore")
def test_latency_is_added(full: Provider) -> None:
    configure(full.server, latency_ms=400)
    started = time.monotonic()
    assert full.provision()[1].status_code == 201
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    "changes",
    [{"mode": "sleepy"}, {"lose_responses": -1}, {"lose_responses": "2"}, {"latency_ms": True}, {"kind": "full"}],
)
def test_config_refuses_bad_settings(servers: dict[str, Server], changes: dict[str, Any]) -> None:
    answer = httpx.post(servers["full"].url + "/_sim/config", json=changes)
    assert answer.status_code == 400 and answer.json()["error"]
    assert configure(servers["full"]) == {
        "name": "vouchr",
        "kind": "full",
        "latency_ms": 0,
        "mode": "normal",
        "lose_responses": 0,
        "seed": 11,
    }


def test_command_line_settings_and_reset(tmp_path: Path) -> None:
    port = free_port()
    args = ["simulate", "vouchers", "--port", str(port), "--kind", "stellr", "--name", "stellr"]
    args += ["--lose-responses", "2", "--latency-ms", "5", "--seed", "3"]
    server = Server(args, port, process_env(), tmp_path / "sim.log")
    try:
        settings = configure(server)
        assert (settings["kind"], settings["lose_responses"], settings["latency_ms"]) == ("stellr", 2, 5.0)
        configure(server, lose_responses=0)
        provider = Provider(server)
        request, answer = provider.provision("STL-GAME-100")
        assert answer.status_code == 201
        assert ledger(server)["issued"] == 1
        assert httpx.post(server.url + "/_sim/reset").status_code == 200
        assert ledger(server) == {
            "issued": 0,
            "provisions": {},
            "redemptions": {},
            "refunds": {},
            "advices": {},
            "vouchers": {},
        }
        assert provider.http.post("/vouchers", json=request).status_code == 201  # no longer a duplicate
    finally:
        server.stop()


def test_the_command_refuses_an_unknown_kind_or_mode() -> None:
    for option, value in (("--kind", "giftr"), ("--mode", "sleepy")):
        result = xhuma("simulate", "vouchers", "--port", str(free_port()), option, value, check=False)
        assert result.returncode != 0 and option in result.stderr
