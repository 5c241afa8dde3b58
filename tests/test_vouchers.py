"""Digital vouchers end to end: a retailer speaking SUV v1 to the switch, which issues vouchers
at two simulated providers (a full one and a Stellr-like one) by the client's catalogue.

Everything runs as real processes over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Server, free_port, new_id, now, process_env, xhuma
from xhuma.ppu.examples import retail_message
from xhuma.vouchers.catalogue import CSV_HEADER

CLIENT = "retailer-v"
CATALOGUE = (
    CSV_HEADER
    + """
GIFT-100,Gift card R100,gift,A gift card,fixed,10000,,,710,,,vouchr,VCH-GIFT-100,1
STREAM-VAR,Streaming credit,streaming,Any amount,variable,,5000,50000,710,,,vouchr,VCH-STREAM,1
STL-GIFT,Stellr gift R50,gift,Issued by Stellr,fixed,5000,,,710,,,stellr,STL-GIFT-50,1
AIR-10,Airtime R10,airtime,,fixed,1000,,,710,,,gone,GONE-AIR,1
AIR-10,Airtime R10,airtime,,fixed,1000,,,710,,,vouchr,VCH-AIR-10,2
"""
)


VOUCHR_RECEIVER = "6001"
"""The receiver institution id that the vouchr provider issues for, when a provision has no product."""


class Channel:
    """A point of sale speaking SUV v1 to the switch."""

    def __init__(self, base_url: str, username: str, password: str, client_id: str) -> None:
        self.client_id = client_id
        self.http = httpx.Client(base_url=base_url + "/suv/v1", auth=(username, password), timeout=30)

    def request(self, **fields: Any) -> dict[str, Any]:
        identifiers = [{"institutionId": self.client_id, "transactionIdentifier": "POS-1"}]
        return retail_message(self.client_id, client_name="Voucher Shop", thirdPartyIdentifiers=identifiers, **fields)

    def provision(
        self, product: str, amount: int | None = None, **fields: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(product={"productId": product}, **fields)
        if amount is not None:
            body["amounts"] = {"requestAmount": {"amount": amount, "currency": 710}}
        return body, self.http.post("/vouchers", json=body)

    def provision_by_receiver(
        self, receiver_id: str | None, amount: int | None = 10000
    ) -> tuple[dict[str, Any], httpx.Response]:
        """A provision as SUV allows it: no product, the provider named by `receiver`."""
        body = self.request()
        if receiver_id is None:
            body.pop("receiver", None)
        else:
            body["receiver"] = {"id": receiver_id, "name": "Vouchr"}
        if amount is not None:
            body["amounts"] = {"requestAmount": {"amount": amount, "currency": "710"}}
        return body, self.http.post("/vouchers", json=body)

    def advice(self, path: str, request_id: str, **fields: Any) -> tuple[dict[str, Any], httpx.Response]:
        body = {"id": new_id(), "requestId": request_id, "time": now(), "thirdPartyIdentifiers": [], **fields}
        return body, self.http.post(path, json=body)

    def confirm(self, request_id: str, path: str = "/vouchers/confirmations") -> httpx.Response:
        if path != "/vouchers/confirmations":
            return self.advice(path, request_id)[1]  # a BasicAdvice: it has no tenders
        tenders = [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}]
        return self.advice(path, request_id, tenders=tenders)[1]

    def reverse(self, request_id: str, path: str = "/vouchers/reversals") -> tuple[dict[str, Any], httpx.Response]:
        return self.advice(path, request_id, reversalReason="CANCELLED")

    def redeem(self, code: str, **fields: Any) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(voucher={"code": code}, **fields)
        return body, self.http.post("/redemptions", json=body)

    def refund(self, code: str) -> tuple[dict[str, Any], httpx.Response]:
        body = self.request(voucher={"code": code})
        return body, self.http.post("/refunds", json=body)


@dataclass
class VoucherRig:
    url: str
    env: dict[str, str]
    channel: Channel
    vouchr: Server
    stellr: Server

    def ledger(self, provider: Server) -> dict[str, Any]:
        return dict(httpx.get(provider.url + "/_sim/ledger").json())

    def configure(self, provider: Server, **changes: Any) -> None:
        httpx.post(provider.url + "/_sim/config", json=changes).raise_for_status()


def _advices(rig: VoucherRig, operation: str) -> int:
    return sum(1 for a in rig.ledger(rig.vouchr)["advices"].values() if a["operation"] == operation)


def _provision_of(rig: VoucherRig, code: str) -> dict[str, Any]:
    return next(p for p in rig.ledger(rig.vouchr)["provisions"].values() if p["code"] == code)


def _wait(predicate: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def rig(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoucherRig]:
    from tests.conftest import fresh_database

    folder = tmp_path_factory.mktemp("vouchers")
    servers: list[Server] = []
    try:
        with fresh_database(backend, folder) as database_url:
            for name, kind in (("vouchr", "full"), ("stellr", "stellr")):
                port = free_port()
                args = ["simulate", "vouchers", "--port", str(port), "--name", name, "--kind", kind]
                servers.append(Server(args, port, process_env(), folder / f"{name}.log"))
            vouchr, stellr = servers
            config = folder / "xhuma.toml"
            config.write_text(
                '[switch]\ninstitution_id = "xhuma-test"\ninstitution_name = "xhuma under test"\n\n'
                "[saf]\nbase_delay_seconds = 0.1\nmax_delay_seconds = 0.5\nlease_seconds = 10\n\n"
                f'[[providers]]\nname = "vouchr"\nkind = "suv_v1"\nbase_url = "{vouchr.url}"\n'
                'username = "xhuma-test"\npassword = "pw"\nread_timeout = 2\n'
                f'receiver_ids = ["{VOUCHR_RECEIVER}"]\ndefault_product_code = "VCH-STREAM"\n\n'
                f'[[providers]]\nname = "stellr"\nkind = "suv_v1"\nbase_url = "{stellr.url}"\n'
                'username = "xhuma-test"\npassword = "pw"\nread_timeout = 2\ncapabilities = []\n\n'
                f'[[providers]]\nname = "gone"\nkind = "suv_v1"\nbase_url = "http://127.0.0.1:{free_port()}"\n'
                "read_timeout = 2\n"
            )
            env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
            xhuma("clients", "add", "--username", "shop", "--password", "shop-pw", "--client-id", CLIENT, env=env)
            csv = folder / "catalogue.csv"
            csv.write_text(CATALOGUE)
            xhuma("catalogue", "import", str(csv), "--client", CLIENT, env=env)
            port = free_port()
            switch = Server(["serve", "--port", str(port)], port, env, folder / "switch.log")
            servers.append(switch)
            yield VoucherRig(switch.url, env, Channel(switch.url, "shop", "shop-pw", CLIENT), vouchr, stellr)
    finally:
        for server in servers:
            server.stop()


def test_provision_then_confirm_delivers_the_confirmation_to_the_provider(rig: VoucherRig) -> None:
    request, response = rig.channel.provision("GIFT-100")
    assert response.status_code == 201, response.text
    answer = response.json()
    code = answer["voucher"]["code"]
    assert answer["id"] == request["id"] and answer["product"] == {"productId": "GIFT-100"}
    assert answer["thirdPartyIdentifiers"][0] == request["thirdPartyIdentifiers"][0]
    assert {e["institutionId"] for e in answer["thirdPartyIdentifiers"]} >= {CLIENT, "xhuma-test"}
    confirmations = _advices(rig, "confirmVoucher")
    assert rig.channel.confirm(request["id"]).status_code == 202
    provider_side = next(p for p in rig.ledger(rig.vouchr)["provisions"].values() if p["code"] == code)
    assert provider_side["product"] == "VCH-GIFT-100" and provider_side["amount"] == 10000
    _wait(lambda: _advices(rig, "confirmVoucher") == confirmations + 1)
    _wait(lambda: _provision_of(rig, code)["state"] == "confirmed_provisioned")
    looked_up = rig.channel.http.get("/vouchers", params={"voucherCode": code})
    assert looked_up.status_code == 200 and looked_up.json()["voucher"]["code"] == code


def test_a_provision_without_a_product_is_routed_by_its_receiver(rig: VoucherRig) -> None:
    request, response = rig.channel.provision_by_receiver(VOUCHR_RECEIVER, 7500)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["id"] == request["id"] and "product" not in answer
    provider_side = _provision_of(rig, answer["voucher"]["code"])
    assert (provider_side["product"], provider_side["amount"]) == ("VCH-STREAM", 7500)
    assert rig.channel.confirm(request["id"]).status_code == 202
    looked_up = rig.channel.http.get("/vouchers", params={"provisionRequestId": request["id"]}).json()
    assert looked_up["voucher"]["code"] == answer["voucher"]["code"] and "product" not in looked_up
    assert looked_up["amounts"]["approvedAmount"]["amount"] == 7500
    retried = rig.channel.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert retried.status_code == 201 and retried.json()["voucher"]["code"] == answer["voucher"]["code"]


def test_a_card_tender_is_masked_in_the_journal_and_the_voucher_code_is_not(rig: VoucherRig) -> None:
    """The card number of a confirmation's tender never reaches the journal or the 202 in clear;
    the voucher code (the product, often a Luhn-valid 16-digit number) is replayed intact."""
    request, response = rig.channel.provision("STREAM-VAR", 7500)
    assert response.status_code == 201, response.text
    code = response.json()["voucher"]["code"]
    pan = "4111111111111111"
    tenders = [{"tenderType": "CREDIT_CARD", "amount": {"amount": 7500, "currency": "710"}, "cardNumber": pan}]
    advice, confirmed = rig.channel.advice("/vouchers/confirmations", request["id"], tenders=tenders)
    assert confirmed.status_code == 202, confirmed.text
    assert confirmed.json()["tenders"][0]["cardNumber"] == "411111******1111"
    shown = xhuma("tx", "show", advice["id"], "--json", env=rig.env).stdout
    assert pan not in shown and "411111******1111" in shown
    retried = rig.channel.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert retried.status_code == 201 and retried.json()["voucher"]["code"] == code
    assert code in xhuma("tx", "show", request["id"], "--json", env=rig.env).stdout


def test_a_receiver_that_maps_to_no_provider_is_refused_naming_receiver_id(rig: VoucherRig) -> None:
    issued = rig.ledger(rig.vouchr)["issued"]
    _, unknown = rig.channel.provision_by_receiver("9999")
    assert (unknown.status_code, unknown.json()["errorType"]) == (404, "TRANSACTION_DECLINED")
    assert unknown.json()["detailMessage"]["field"] == "receiver.id"
    assert unknown.json()["detailMessage"]["receiverId"] == "9999"
    _, no_receiver = rig.channel.provision_by_receiver(None)
    assert no_receiver.status_code == 400
    assert [e["field"] for e in no_receiver.json()["detailMessage"]["formatErrors"]] == ["receiver.id"]
    _, no_amount = rig.channel.provision_by_receiver(VOUCHR_RECEIVER, None)
    assert [e["field"] for e in no_amount.json()["detailMessage"]["formatErrors"]] == ["amounts.requestAmount"]
    assert rig.ledger(rig.vouchr)["issued"] == issued


def test_a_provider_that_cannot_be_reached_falls_back_to_the_next_mapping(rig: VoucherRig) -> None:
    request, response = rig.channel.provision("AIR-10")
    assert response.status_code == 201, response.text
    assert _provision_of(rig, response.json()["voucher"]["code"])["product"] == "VCH-AIR-10"
    shown = xhuma("tx", "show", request["id"], "--json", env=rig.env).stdout
    assert "GONE-AIR" in shown and "VCH-AIR-10" in shown  # both attempts are in the journal


def test_reversed_provision_is_not_provisioned_again_under_its_id(rig: VoucherRig) -> None:
    request, response = rig.channel.provision("STREAM-VAR", 7500)
    assert response.status_code == 201, response.text
    _, reversal = rig.channel.reverse(request["id"])
    assert reversal.status_code == 202
    _wait(lambda: _provision_of(rig, response.json()["voucher"]["code"])["state"] == "reversed")
    again = rig.channel.http.post("/vouchers", json=request)
    assert again.status_code == 400 and again.json()["errorType"] == "DUPLICATE_RECORD"
    assert again.json()["detailMessage"]["voucher"]["code"] == response.json()["voucher"]["code"]
    confirm = rig.channel.confirm(request["id"])
    assert confirm.status_code == 400 and confirm.json()["errorType"] == "VOUCHER_ALREADY_REVERSED"
    assert confirm.json()["originalId"] == request["id"]


def test_a_reversal_that_comes_first_refuses_its_provision(rig: VoucherRig) -> None:
    issued_before = rig.ledger(rig.vouchr)["issued"]
    request = rig.channel.request(product={"productId": "GIFT-100"})
    reversal, answer = rig.channel.reverse(request["id"])
    assert answer.status_code == 404 and answer.json()["errorType"] == "UNABLE_TO_LOCATE_RECORD"
    assert answer.json()["originalId"] == request["id"] and answer.json()["id"] == reversal["id"]
    refused = rig.channel.http.post("/vouchers", json=request)
    assert refused.status_code == 400 and refused.json()["errorType"] == "VOUCHER_ALREADY_REVERSED"
    assert rig.ledger(rig.vouchr)["issued"] == issued_before


def test_error_matrix_for_provisions(rig: VoucherRig) -> None:
    unknown = new_id()
    confirm = rig.channel.confirm(unknown)
    assert (confirm.status_code, confirm.json()["errorType"], confirm.json()["originalId"]) == (
        404,
        "UNABLE_TO_LOCATE_RECORD",
        unknown,
    )
    request, response = rig.channel.provision("GIFT-100")
    assert rig.channel.confirm(request["id"]).status_code == 202
    reversal, refused = rig.channel.reverse(request["id"])
    assert (refused.status_code, refused.json()["errorType"]) == (400, "VOUCHER_ALREADY_CONFIRMED")
    assert refused.json()["id"] == reversal["id"] and refused.json()["originalId"] == request["id"]
    stranger = rig.channel.request(product={"productId": "GIFT-100"})
    stranger["client"] = {"id": "someone-else", "name": "Someone"}
    wrong = rig.channel.http.post("/vouchers", json=stranger)
    assert (wrong.status_code, wrong.json()["errorType"]) == (400, "AUTHENTICATION_ERROR")
    assert wrong.json()["id"] == stranger["id"] and "originalId" not in wrong.json()


PROVISIONED_BY = {
    "product": lambda channel: channel.provision("GIFT-100"),
    "receiver": lambda channel: channel.provision_by_receiver(VOUCHR_RECEIVER),
}


@pytest.mark.parametrize("routed_by", sorted(PROVISIONED_BY))
def test_redemption_and_refund_life_cycles(rig: VoucherRig, routed_by: str) -> None:
    channel = rig.channel
    request, response = PROVISIONED_BY[routed_by](channel)
    assert response.status_code == 201, response.text
    code = response.json()["voucher"]["code"]
    _, early = channel.redeem(code)
    assert (early.status_code, early.json()["errorType"]) == (400, "VOUCHER_NOT_REDEEMABLE")
    assert "originalId" not in early.json()
    assert channel.confirm(request["id"]).status_code == 202

    redemption, redeemed = channel.redeem(code)
    assert redeemed.status_code == 201, redeemed.text
    _, twice = channel.redeem(code)
    assert (twice.status_code, twice.json()["errorType"]) == (400, "VOUCHER_ALREADY_REDEEMED")
    _, too_soon = channel.refund(code)
    assert (too_soon.status_code, too_soon.json()["errorType"]) == (400, "REDEMPTION_NOT_CONFIRMED")
    assert channel.confirm(redemption["id"], "/redemptions/confirmations").status_code == 202
    again = channel.confirm(redemption["id"], "/redemptions/confirmations")
    assert (again.status_code, again.json()["errorType"], again.json()["originalId"]) == (
        400,
        "VOUCHER_NOT_REDEEMED",
        redemption["id"],
    )
    _, late_reversal = channel.reverse(redemption["id"], "/redemptions/reversals")
    assert (late_reversal.status_code, late_reversal.json()["errorType"]) == (400, "REDEMPTION_ALREADY_CONFIRMED")

    refund, refunded = channel.refund(code)
    assert refunded.status_code == 201, refunded.text
    _, second = channel.refund(code)
    assert (second.status_code, second.json()["errorType"]) == (400, "VOUCHER_ALREADY_REFUNDED")
    assert channel.confirm(refund["id"], "/refunds/confirmations").status_code == 202
    _, after = channel.refund(code)
    assert (after.status_code, after.json()["errorType"]) == (400, "VOUCHER_NOT_REDEEMED")
    _, undo = channel.reverse(refund["id"], "/refunds/reversals")
    assert (undo.status_code, undo.json()["errorType"], undo.json()["originalId"]) == (
        400,
        "REFUND_ALREADY_CONFIRMED",
        refund["id"],
    )
    # Refund confirmed: the voucher may be redeemed again, and a reversal of that puts it back.
    redemption2, redeemed2 = channel.redeem(code)
    assert redeemed2.status_code == 201
    assert channel.reverse(redemption2["id"], "/redemptions/reversals")[1].status_code == 202
    assert channel.redeem(code)[1].status_code == 201


def test_reversals_of_unknown_redemptions_and_refunds_are_remembered(rig: VoucherRig) -> None:
    channel = rig.channel
    request, response = channel.provision("GIFT-100")
    code = response.json()["voucher"]["code"]
    channel.confirm(request["id"])
    redemption = channel.request(voucher={"code": code})
    reversal, unknown = channel.reverse(redemption["id"], "/redemptions/reversals")
    assert (unknown.status_code, unknown.json()["originalId"]) == (404, redemption["id"])
    refused = channel.http.post("/redemptions", json=redemption)
    assert (refused.status_code, refused.json()["errorType"]) == (400, "REDEMPTION_ALREADY_REVERSED")
    assert refused.json()["originalId"] == reversal["id"]
    missing = channel.confirm(new_id(), "/redemptions/confirmations")
    assert (missing.status_code, missing.json()["errorType"]) == (404, "UNABLE_TO_LOCATE_RECORD")
    # The refused redemption left the voucher redeemable.
    redeemed_id, redeemed = channel.redeem(code)
    assert redeemed.status_code == 201
    channel.confirm(redeemed_id["id"], "/redemptions/confirmations")
    refund = channel.request(voucher={"code": code})
    refund_reversal, unknown_refund = channel.reverse(refund["id"], "/refunds/reversals")
    assert unknown_refund.status_code == 404
    refused_refund = channel.http.post("/refunds", json=refund)
    assert (refused_refund.status_code, refused_refund.json()["errorType"]) == (400, "REFUND_ALREADY_REVERSED")
    assert refused_refund.json()["originalId"] == refund_reversal["id"]


def test_retry_of_a_lost_provision_returns_the_same_voucher_and_issues_nothing_new(rig: VoucherRig) -> None:
    rig.configure(rig.vouchr, lose_responses=1)
    request, lost = rig.channel.provision("GIFT-100")
    assert lost.status_code == 504 and lost.json()["errorType"] == "VOUCHER_STATUS_UNKNOWN"
    issued = rig.ledger(rig.vouchr)["issued"]
    retried = rig.channel.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert retried.status_code == 201, retried.text
    again = rig.channel.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert again.json()["voucher"]["code"] == retried.json()["voucher"]["code"]
    assert rig.ledger(rig.vouchr)["issued"] == issued
    provider_side = [
        p for p in rig.ledger(rig.vouchr)["provisions"].values() if p["code"] == again.json()["voucher"]["code"]
    ]
    assert len(provider_side) == 1


def test_stellr_cannot_retry_or_reverse_so_what_it_may_have_issued_is_exposure(rig: VoucherRig) -> None:
    rig.configure(rig.stellr, lose_responses=1)
    request, lost = rig.channel.provision("STL-GIFT")
    assert lost.status_code == 504
    retried = rig.channel.http.post(f"/vouchers/{request['id']}/retry", json=request)
    assert (retried.status_code, retried.json()["errorType"]) == (400, "VOUCHER_STATUS_UNKNOWN")
    issued, answer = rig.channel.provision("STL-GIFT")
    assert answer.status_code == 201
    assert rig.channel.reverse(issued["id"])[1].status_code == 202
    listed = xhuma("vouchers", "exposure", "--json", env=rig.env).stdout.splitlines()
    rows = {row["retail_id"]: row for row in map(json.loads, listed)}
    assert rows[request["id"]]["reason"] == "voucher_outcome_unknown" and rows[request["id"]]["amount"] == 5000
    assert rows[issued["id"]]["reason"] == "voucher_reversal_not_supported"
    assert rows[issued["id"]]["code"] == answer.json()["voucher"]["code"]
    assert not any(a for a in rig.ledger(rig.stellr)["advices"].values())


def test_products_lookup_revalidates_with_etag(rig: VoucherRig, tmp_path: Path) -> None:
    first = rig.channel.http.get("/products")
    assert first.status_code == 200
    codes = {p["productId"] for p in first.json()["products"]}
    assert codes >= {"GIFT-100", "STREAM-VAR", "STL-GIFT"}
    etag = first.headers["etag"]
    cached = rig.channel.http.get("/products", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and not cached.content
    version = int(first.headers["x-catalogue-version"])
    extra = tmp_path / "more.csv"
    extra.write_text(
        CATALOGUE.splitlines()[0] + "\nAIR-10,Airtime R10,airtime,,fixed,1000,,,710,,,vouchr,VCH-AIR-10,1\n"
    )
    xhuma("catalogue", "import", str(extra), "--client", CLIENT, env=rig.env)
    changed = rig.channel.http.get("/products", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "AIR-10" in {p["productId"] for p in changed.json()["products"]}
    since = rig.channel.http.get("/products/changes", params={"since": version}).json()
    assert [c["productCode"] for c in since["changes"]] == ["AIR-10"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m["originator"]["merchant"]["merchantName"].pop("city"), "originator.merchant.merchantName.city"),
        (lambda m: m.update(unexpected=1), "unexpected"),
        (
            lambda m: m["thirdPartyIdentifiers"][0].pop("transactionIdentifier"),
            "thirdPartyIdentifiers[0].transactionIdentifier",
        ),
        (lambda m: m.update(id="not-a-uuid"), "id"),
        (lambda m: m.pop("product") and m.pop("receiver", None), "receiver.id"),
    ],
)
def test_malformed_provisions_name_the_field(rig: VoucherRig, mutate: Any, field: str) -> None:
    message = rig.channel.request(product={"productId": "GIFT-100"})
    mutate(message)
    answer = rig.channel.http.post("/vouchers", json=message)
    assert answer.status_code == 400 and answer.json()["errorType"] == "FORMAT_ERROR"
    assert field in [e["field"] for e in answer.json()["detailMessage"]["formatErrors"]]


def test_a_malformed_uuid_is_worded_as_the_interface_words_it(rig: VoucherRig) -> None:
    message = rig.channel.request(product={"productId": "GIFT-100"}, id="not-a-uuid")
    answer = rig.channel.http.post("/vouchers", json=message)
    (error,) = answer.json()["detailMessage"]["formatErrors"]
    assert error["field"] == "id"
    assert error["msg"] == "UUID must conform to the format 8-4-4-4-12 hexadecimal values"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_provisions_get_a_clear_error_never_a_500(rig: VoucherRig, data: st.DataObject) -> None:
    message = rig.channel.request(
        product={"productId": "STREAM-VAR"}, amounts={"requestAmount": {"amount": 6000, "currency": "710"}}
    )
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(message)))
        parent = message
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = data.draw(json_values)
        if not _paths(message):
            break
    answer = rig.channel.http.post("/vouchers", json=message)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["errorType"]
        if answer.json()["errorType"] == "FORMAT_ERROR":
            assert all(e["field"] and e["msg"] for e in answer.json()["detailMessage"]["formatErrors"])


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", '{"id": "\u00e9"}'.encode(), b"\xff\xfe"])
def test_bodies_that_are_not_messages_get_format_errors(rig: VoucherRig, body: bytes) -> None:
    for path in ("/vouchers", "/vouchers/confirmations", "/redemptions", "/refunds/reversals"):
        answer = rig.channel.http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert (answer.status_code, answer.json()["errorType"]) == (400, "FORMAT_ERROR"), (path, answer.text)
