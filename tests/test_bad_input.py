"""Adversarial input to a running server: every case is a 4xx naming the field, never a 500,
and the work one request can cause is bounded (a real switch process, PPU, SUV and admin)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Switch
from tests.support import base_message, new_id
from xhuma.validation import MAX_ERRORS

ADMIN = ("bad-input-ops", "ops-pw")


@pytest.fixture(scope="module")
def admin(switch: Switch) -> httpx.Client:
    switch.cli(
        "clients", "add", "--username", ADMIN[0], "--password", ADMIN[1], "--client-id", "ops", "--role", "admin"
    )
    return httpx.Client(base_url=switch.url, auth=ADMIN, timeout=30)


def fields(answer: httpx.Response) -> list[str]:
    body = answer.json()
    detail = body["detailMessage"]
    listed = detail["formatErrors"] if isinstance(detail, dict) else detail
    return [e["field"] for e in listed]


def purchase(switch: Switch, **changes: Any) -> httpx.Response:
    message = base_message(
        "retailer-1", meter={"meterId": "TST001"}, purchaseAmount={"amount": 10000, "currency": "710"}
    )
    message.update(changes)
    return switch.retailer.post(f"/tokenPurchases/{message['id']}", message)


@pytest.mark.parametrize("amount", [2**63, 10**30, -(2**63) - 1])
def test_an_amount_too_large_for_any_ledger_is_a_format_error(switch: Switch, amount: int) -> None:
    answer = purchase(switch, purchaseAmount={"amount": amount, "currency": "710"})
    assert answer.status_code == 400, answer.text
    assert fields(answer) == ["purchaseAmount.amount"]


@pytest.mark.parametrize("currency", ["999", "000", "ABC", "71"])
def test_a_currency_that_is_not_iso_4217_is_a_format_error(switch: Switch, currency: str) -> None:
    answer = purchase(switch, purchaseAmount={"amount": 10000, "currency": currency})
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["detailMessage"]
    assert error["field"] == "purchaseAmount.currency" and "ISO 4217" in error["error"]


def test_an_amount_as_a_string_of_digits_is_accepted_as_the_packs_send_it(switch: Switch) -> None:
    answer = purchase(switch, purchaseAmount={"amount": "10000", "currency": "710"})
    assert answer.status_code == 201, answer.text


def test_control_characters_in_a_name_are_refused_naming_it(switch: Switch) -> None:
    message = base_message(
        "retailer-1", meter={"meterId": "TST001"}, purchaseAmount={"amount": 10000, "currency": "710"}
    )
    message["client"]["name"] = "Shop\u0000Name"
    answer = switch.retailer.post(f"/tokenPurchases/{message['id']}", message)
    assert answer.status_code == 400, answer.text
    assert fields(answer) == ["client.name"]


def test_nul_in_an_operator_note_or_a_bank_report_is_refused_400_not_stored(
    switch: Switch, admin: httpx.Client
) -> None:
    """PostgreSQL refuses NUL in text: before the check, both answered 500 there (found by the fuzz test)."""
    resolved = admin.post("/admin/saf/1/resolve", content=b'{"note": "paid\\u0000by hand"}')
    assert resolved.status_code == 400 and resolved.json()["field"] == "note", resolved.text
    switch.cli(
        "clients", "add", "--username", "nul-bank", "--password", "bank-pw", "--client-id", "bank-x", "--role", "bank"
    )
    identifiers = {"messageIdentification": "M1", "creationDateTime": "2026-12-04T10:00:00Z"}
    report = {
        "messageIdentifiers": identifiers,
        "originalMessageIdentifiers": {**identifiers, "messageIdentification": "M\u00001"},
        "transactionIdentifiers": {"endToEndIdentification": "E1"},
        "status": {"outcome": "APPROVED"},
    }
    answered = httpx.post(switch.url + "/inbound/payment-return-response", json=report, auth=("nul-bank", "bank-pw"))
    assert answered.status_code == 400, answered.text
    assert "control characters" in answered.json()["detail"]


def test_a_body_that_says_it_is_not_json_is_415(switch: Switch) -> None:
    message = base_message("retailer-1", meter={"meterId": "TST001"})
    answer = switch.retailer.http.post(
        f"/meterLookups/{message['id']}",
        content=httpx.Request("POST", "/", json=message).content,
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code == 415 and answer.json()["errorType"] == "FORMAT_ERROR"
    suv = httpx.post(
        switch.url + "/suv/v1/vouchers",
        content=b"{}",
        headers={"Content-Type": "text/plain"},
        auth=("till", "s3cret-till"),
    )
    assert suv.status_code == 415


def deep(levels: int) -> bytes:
    return b'{"id": ' + b"[" * levels + b"]" * levels + b"}"


def test_json_nested_a_thousand_deep_is_a_format_error_everywhere(switch: Switch, admin: httpx.Client) -> None:
    ppu = switch.retailer.http.post(f"/meterLookups/{new_id()}", content=deep(1000))
    assert ppu.status_code == 400 and ppu.json()["errorType"] == "FORMAT_ERROR", ppu.text
    suv = httpx.post(switch.url + "/suv/v1/vouchers", content=deep(1000), auth=("till", "s3cret-till"))
    assert suv.status_code == 400 and suv.json()["errorType"] == "FORMAT_ERROR", suv.text
    catalogue = admin.put(
        "/admin/catalogue/retailer-1/products", content=deep(1000), headers={"Content-Type": "application/json"}
    )
    assert catalogue.status_code == 400, catalogue.text


@pytest.mark.parametrize(
    "path",
    [
        "/admin/saf/99999999999999999999",
        "/admin/saf/" + "9" * 5000,
        "/admin/saf/\u0663",  # an Arabic-Indic three
    ],
)
def test_entry_ids_out_of_range_or_not_ascii_are_not_found(admin: httpx.Client, path: str) -> None:
    answer = admin.get(path)
    assert answer.status_code == 404 and answer.json()["field"] == "entry_id"


@pytest.mark.parametrize("since", ["99999999999999999999", "9" * 5000, "\u0663", "-1"])
def test_a_catalogue_version_that_is_not_one_is_a_format_error(switch: Switch, admin: httpx.Client, since: str) -> None:
    suv = httpx.get(switch.url + "/suv/v1/products/changes", params={"since": since}, auth=("till", "s3cret-till"))
    assert suv.status_code == 400 and fields(suv) == ["since"]
    operator = admin.get("/admin/catalogue/retailer-1/changes", params={"since": since})
    assert operator.status_code == 400 and operator.json()["field"] == "since"


@pytest.mark.parametrize("limit", ["\u0661\u0660", "99999999999999999999999", "0"])
def test_limits_are_ascii_numbers_in_range(admin: httpx.Client, limit: str) -> None:
    for path in ("/admin/saf", "/admin/audit", "/admin/routing/table"):
        answer = admin.get(path, params={"limit": limit})
        assert answer.status_code == 400, (path, answer.text)


def test_ten_thousand_empty_tenders_get_a_short_error_list(switch: Switch) -> None:
    bought = purchase(switch)
    assert bought.status_code == 201, bought.text
    purchase_id = bought.json()["id"]
    advice = {
        "id": new_id(),
        "requestId": purchase_id,
        "time": bought.json()["time"],
        "thirdPartyIdentifiers": bought.json()["thirdPartyIdentifiers"],
        "tenders": [{}] * 10_000,
    }
    answer = switch.retailer.post(f"/tokenPurchases/{purchase_id}/confirmations/{advice['id']}", advice)
    assert answer.status_code == 400, answer.text
    listed = answer.json()["detailMessage"]
    assert len(listed) == MAX_ERRORS + 1 and listed[-1]["field"] == "$"
    assert len(answer.content) < 10_000


@pytest.mark.parametrize("path_id", ["not-a-uuid", "a" * 5000])
def test_a_retry_under_a_path_id_that_is_not_a_uuid_buys_nothing(switch: Switch, path_id: str) -> None:
    listed_before = switch.cli("tx", "list", "--client", "retailer-1", "--limit", "10000", "--json").stdout.count("\n")
    message = base_message(
        "retailer-1", meter={"meterId": "TST001"}, purchaseAmount={"amount": 10000, "currency": "710"}
    )
    answer = switch.retailer.post(f"/tokenPurchases/{path_id}/retry", message)
    assert answer.status_code in (400, 414), answer.text
    if answer.status_code == 400:
        assert fields(answer) == ["id"]
    listed_after = switch.cli("tx", "list", "--client", "retailer-1", "--limit", "10000", "--json").stdout.count("\n")
    assert listed_after == listed_before
    suv = httpx.post(switch.url + f"/suv/v1/vouchers/{path_id}/retry", json={}, auth=("till", "s3cret-till"))
    assert suv.status_code in (400, 414)
    if suv.status_code == 400:
        (error,) = suv.json()["detailMessage"]["formatErrors"]
        assert error["field"] == "provisionId"


def test_two_reversals_of_one_unknown_voucher_provision_are_both_answered_404(switch: Switch) -> None:
    """Found by the fuzzer: the second tried to remember the same early reversal again (500)."""
    provision_id = new_id()
    for _ in range(2):
        reversal = {
            "id": new_id(),
            "requestId": provision_id,
            "time": "2026-12-03T10:00:00Z",
            "thirdPartyIdentifiers": [],
            "reversalReason": "TIMEOUT",
        }
        answer = httpx.post(switch.url + "/suv/v1/vouchers/reversals", json=reversal, auth=("till", "s3cret-till"))
        assert answer.status_code == 404 and answer.json()["originalId"] == provision_id, answer.text


@pytest.mark.parametrize("name", ["", ".", "x" * 300])
def test_an_eft_upload_without_a_usable_file_name_is_refused_naming_it(admin: httpx.Client, name: str) -> None:
    answer = admin.post("/admin/eft/files", params={"name": name}, content=b"")
    assert answer.status_code == 400 and answer.json()["field"] == "name", answer.text


@pytest.mark.parametrize("body", ["municipality,provider,rank\r]x\n", "municipality,provider,rank\nCity,sim,\u00b2\n"])
def test_a_preferences_file_the_csv_reader_chokes_on_is_refused_whole(admin: httpx.Client, body: str) -> None:
    """Found by the fuzzer: a bare carriage return (csv.Error) and a superscript digit were 500s."""
    answer = admin.post("/admin/routing/preferences.csv", content=body.encode(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 400 and answer.json()["error"] == "nothing was changed", answer.text


@pytest.mark.parametrize("query", ["action=%19%00", "state=a%00b"])
def test_control_characters_in_a_query_are_refused(admin: httpx.Client, query: str) -> None:
    """Found by the fuzzer on PostgreSQL, which refuses NUL in text: a 500 at the query."""
    for path in ("/admin/audit", "/admin/saf"):
        assert admin.get(f"{path}?{query}").status_code == 400


def test_listings_stay_one_json_object_per_line_whatever_a_refused_body_held(switch: Switch) -> None:
    """Found through the fuzzer: a refused body with U+2028 or NEL broke `tx rejected --json`
    for line readers, which split on them."""
    body = '{"id": "x\u2028y\u0085z", "unexpected": "\u2029"}'.encode()
    assert switch.retailer.http.post(f"/meterLookups/{new_id()}", content=body).status_code == 400
    lines = switch.cli("tx", "rejected", "--json", "--limit", "50").stdout.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
