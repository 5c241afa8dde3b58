"""The PPU v3 switch end to end: retailer -> switch -> simulated provider, all real processes."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Switch
from tests.support import Server, base_message, new_id
from xhuma.simulators.tokens import token_identifier, verify_token

ECHOED = ("id", "time", "originator", "client")


def tx(switch: Switch, ref: str) -> dict:
    return json.loads(switch.cli("tx", "show", ref, "--json").stdout)


def legs(view: dict) -> list[tuple[str, str]]:
    return [(m["leg"], m["direction"]) for m in view["messages"]]


def eventually(get, done, seconds: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = get()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def ledger(simulator: Server) -> dict:
    return httpx.get(simulator.url + "/_sim/ledger").json()


def test_lookup_purchase_confirm(switch: Switch) -> None:
    pos = switch.retailer
    lookup, answer = pos.lookup("TST001")
    assert answer.status_code == 201, answer.text
    assert answer.json()["meter"]["meterId"] == "TST001"
    assert answer.json()["minAmount"]["amount"] == 10000

    purchase, answer = pos.purchase("TST001", "10000")  # the amount as a string, as the pack sends it
    assert answer.status_code == 201, answer.text
    bought = answer.json()
    for field in ECHOED:
        assert bought[field] == purchase[field]
    assert bought["time"] == purchase["time"]
    identifiers = bought["thirdPartyIdentifiers"]
    assert identifiers[0] == purchase["thirdPartyIdentifiers"][0]
    assert {"xhuma-test", "sim"} <= {i["institutionId"] for i in identifiers}
    (token,) = bought["tokens"]
    assert token["tokenType"] == "STD" and len(token["token"]) == 20 and token["token"].isdigit()

    confirmation, answer = pos.confirm(purchase["id"], identifiers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == confirmation["id"]

    view = tx(switch, purchase["id"])
    assert view["transaction"]["state"] == "confirmed"
    assert view["transaction"]["retail_id"] == purchase["id"]
    assert legs(view) == [
        ("retail", "request"),
        ("upstream", "request"),
        ("upstream", "response"),
        ("retail", "response"),
    ]
    upstream_request = json.loads(view["messages"][1]["body"])
    assert upstream_request["id"] == view["transaction"]["id"] != purchase["id"]
    assert upstream_request["client"]["id"] == "xhuma-test"
    assert view["messages"][2]["status"] == 201 and view["messages"][2]["elapsed_us"] > 0
    assert [a["kind"] for a in view["advices"]] == ["confirmation"]
    # Acknowledged first, then delivered upstream by store-and-forward.
    advice = eventually(lambda: tx(switch, view["advices"][0]["id"]), lambda a: len(a["messages"]) == 4)
    assert legs(advice) == [
        ("retail", "request"),
        ("retail", "response"),
        ("upstream", "request"),
        ("upstream", "response"),
    ]
    assert advice["messages"][3]["status"] == 202


def test_purchase_then_reverse(switch: Switch) -> None:
    pos = switch.retailer
    purchase, answer = pos.purchase("TST003", 10000)
    assert answer.status_code == 201
    assert sorted(t["tokenType"] for t in answer.json()["tokens"]) == ["BSST", "STD"]
    _, answer = pos.reverse(purchase["id"], answer.json()["thirdPartyIdentifiers"])
    assert answer.status_code == 202
    assert tx(switch, purchase["id"])["transaction"]["state"] == "reversed"
    # A confirmation after the reversal is acknowledged but does not undo it.
    _, answer = pos.confirm(purchase["id"], [])
    assert answer.status_code == 202
    assert tx(switch, purchase["id"])["transaction"]["state"] == "reversed"


def test_timed_out_purchase_is_retrieved_by_retry_never_bought_twice(switch: Switch, simulator: Server) -> None:
    pos = switch.retailer
    purchase, answer = pos.purchase("TST011", 10000)
    assert answer.status_code == 504, answer.text
    assert answer.json()["errorType"] == "UPSTREAM_UNAVAILABLE"
    view = tx(switch, purchase["id"])
    # Store-and-forward may already have retrieved it; either way the retail retry gets it.
    assert view["transaction"]["state"] in ("unknown", "approved")
    upstream_id = view["transaction"]["id"]

    answer = pos.retry(purchase)
    assert answer.status_code == 201, answer.text
    tokens = answer.json()["tokens"]
    assert answer.json()["time"] == purchase["time"]
    assert tx(switch, purchase["id"])["transaction"]["state"] == "approved"

    # A second retry is answered from the journal: same tokens, nothing sent upstream.
    before = len(tx(switch, purchase["id"])["messages"])
    again = pos.retry(purchase)
    assert again.status_code == 201 and again.json()["tokens"] == tokens
    assert legs(tx(switch, purchase["id"]))[before:] == [("retail", "request"), ("retail", "response")]

    bought = [p for p in ledger(simulator)["purchases"] if p["id"] == upstream_id]
    assert len(bought) == 1

    _, answer = pos.confirm(purchase["id"], again.json()["thirdPartyIdentifiers"])
    assert answer.status_code == 202
    assert tx(switch, purchase["id"])["transaction"]["state"] == "confirmed"


def test_unknown_outcome_is_retrieved_without_the_retailer(switch: Switch, simulator: Server) -> None:
    pos = switch.retailer
    purchase, answer = pos.purchase("TST011", 10000)
    assert answer.status_code == 504
    view = eventually(lambda: tx(switch, purchase["id"]), lambda v: v["transaction"]["state"] == "approved")
    assert view["transaction"]["state"] == "approved"
    retrieval = [m for m in view["messages"] if m["leg"] == "upstream" and m["url"].endswith("/retry")]
    assert retrieval and retrieval[-1]["status"] == 201
    entries = [json.loads(line) for line in switch.cli("saf", "list", "--json", "--limit", "200").stdout.splitlines()]
    (entry,) = [e for e in entries if e["tx_id"] == view["transaction"]["id"]]
    assert entry["operation"] == "retryPurchaseRequest" and entry["state"] == "delivered"
    # The retailer's own retry is now answered from the journal, with the retrieved tokens.
    before = len(view["messages"])
    answer = pos.retry(purchase)
    assert answer.status_code == 201
    ledger_tokens = [p["tokens"] for p in ledger(simulator)["purchases"] if p["id"] == view["transaction"]["id"]]
    assert ledger_tokens == [[t["token"] for t in answer.json()["tokens"]]]
    assert legs(tx(switch, purchase["id"]))[before:] == [("retail", "request"), ("retail", "response")]


def test_retry_of_a_purchase_never_received_buys_once(switch: Switch, simulator: Server) -> None:
    pos = switch.retailer
    original = base_message(
        pos.client_id, meter={"meterId": "TST004"}, purchaseAmount={"amount": 10000, "currency": "710"}
    )
    answer = pos.retry(original)
    assert answer.status_code == 201, answer.text
    assert answer.json()["tokens"][0]["tariffCalc"]
    again = pos.retry(original)
    assert again.json()["tokens"] == answer.json()["tokens"]
    upstream_id = tx(switch, original["id"])["transaction"]["id"]
    assert len([p for p in ledger(simulator)["purchases"] if p["id"] == upstream_id]) == 1


def test_reprint_from_journal_and_upstream(switch: Switch) -> None:
    pos = switch.retailer
    purchase, bought = pos.purchase("TST001", 10000)
    reprint = base_message(pos.client_id, meter={"meterId": "TST001"}, originalRef=purchase["id"])
    answer = pos.post(f"/tokenReprints/{reprint['id']}", reprint)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tokens"] == bought.json()["tokens"]
    assert answer.json()["id"] == reprint["id"]
    view = tx(switch, reprint["id"])
    assert legs(view) == [("retail", "request"), ("retail", "response")]  # answered from the journal

    # Without a reference: the client's own newest purchase for the meter, from the journal.
    last = base_message(pos.client_id, meter={"meterId": "TST001"})
    answer = pos.post(f"/tokenReprints/{last['id']}", last)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tokens"] == bought.json()["tokens"]


def test_a_retailer_cannot_reprint_another_retailers_purchase(switch: Switch) -> None:
    mine, theirs = switch.retailer, switch.other_retailer
    purchase, bought = mine.purchase("TST003", 10000)
    assert bought.status_code == 201, bought.text
    token = bought.json()["tokens"][0]["token"]

    for fields in ({}, {"originalRef": purchase["id"]}):
        prying = base_message(theirs.client_id, meter={"meterId": "TST003"}, **fields)
        answer = theirs.post(f"/tokenReprints/{prying['id']}", prying)
        assert answer.status_code == 404, answer.text
        assert answer.json()["errorType"] == "UNABLE_TO_LOCATE_RECORD"
        assert "tokens" not in answer.json() and "customer" not in answer.json()
        assert token not in answer.text
    # Nothing was asked upstream on the other retailer's behalf.
    refused = [json.loads(line) for line in switch.cli("tx", "rejected", "--json", "--limit", "50").stdout.splitlines()]
    assert any(r["operation"] == "requestTokenReprint" and r["client_id"] == theirs.client_id for r in refused)


def test_a_reprint_of_a_purchase_still_unknown_asks_its_provider_by_our_id(switch: Switch, simulator: Server) -> None:
    pos = switch.retailer
    purchase, answer = pos.purchase("TST011", 10000)
    assert answer.status_code == 504
    upstream_id = tx(switch, purchase["id"])["transaction"]["id"]
    reprint = base_message(pos.client_id, meter={"meterId": "TST011"}, originalRef=purchase["id"])
    answer = pos.post(f"/tokenReprints/{reprint['id']}", reprint)

    assert answer.status_code == 200, answer.text
    (sale,) = [p for p in ledger(simulator)["purchases"] if p["id"] == upstream_id]
    assert [t["token"] for t in answer.json()["tokens"]] == sale["tokens"]
    sent = [m for m in tx(switch, reprint["id"])["messages"] if (m["leg"], m["direction"]) == ("upstream", "request")]
    # Store-and-forward may have retrieved the purchase first (then the journal answers);
    # if the provider was asked, it was asked for our id, the only one it knows.
    assert all(json.loads(m["body"])["originalRef"] == upstream_id for m in sent)


def test_trial_key_change_and_fault_report(switch: Switch) -> None:
    pos = switch.retailer
    trial = base_message(
        pos.client_id, meter={"meterId": "TST001"}, purchaseAmount={"amount": 10000, "currency": "710"}
    )
    answer = pos.post(f"/tokenPurchases/{trial['id']}/trial", trial)
    assert answer.status_code == 200, answer.text

    change = base_message(pos.client_id, meter={"meterId": "TST001"})
    answer = pos.post(f"/keyChangeTokenRequests/{change['id']}", change)
    assert answer.status_code == 201, answer.text
    assert [t["tokenType"] for t in answer.json()["tokens"]] == ["KC", "KC"]
    confirmation = {"id": new_id(), "requestId": change["id"], "time": change["time"], "thirdPartyIdentifiers": []}
    answer = pos.post(f"/keyChangeTokenRequests/{change['id']}/confirmations/{confirmation['id']}", confirmation)
    assert answer.status_code == 202, answer.text
    assert tx(switch, change["id"])["transaction"]["state"] == "confirmed"

    fault = base_message(
        pos.client_id, meter={"meterId": "TST002"}, contactNumber="0821234567", faultType="KeepsTripping"
    )
    answer = pos.post(f"/faultReports/{fault['id']}", fault)
    assert answer.status_code == 201, answer.text
    assert answer.json()["reference"]
    assert tx(switch, fault["id"])["transaction"]["kind"] == "fault_report"


def test_unknown_meter_tolerates_unknown_fields(switch: Switch) -> None:
    message = base_message(switch.retailer.client_id, meter={"meterId": "NOSUCHMETER"}, reciever={"id": "x"})
    answer = switch.retailer.post(f"/meterLookups/{message['id']}", message)
    assert answer.status_code == 400
    assert answer.json()["errorType"] == "UNKNOWN_METER_ID"
    assert answer.json()["id"] == message["id"]
    assert tx(switch, message["id"])["transaction"]["state"] == "declined"


def test_wrong_amount_is_declined(switch: Switch) -> None:
    _, answer = switch.retailer.purchase("TST001", 12345)
    assert answer.status_code == 400
    assert answer.json()["errorType"] == "INVALID_AMOUNT"


@pytest.mark.parametrize("kind", ["confirmations", "reversals"])
def test_advice_for_unknown_purchase_is_404(switch: Switch, kind: str) -> None:
    missing = new_id()
    extra = {"reversalReason": "TIMEOUT"} if kind == "reversals" else {}
    advice, answer = switch.retailer.advice(kind, missing, [], **extra)
    assert answer.status_code == 404
    assert answer.json()["errorType"] == "UNABLE_TO_LOCATE_RECORD"
    assert answer.json()["originalId"] == missing


def test_purchases_are_partitioned_by_client(switch: Switch) -> None:
    purchase, answer = switch.retailer.purchase("TST001", 10000)
    assert answer.status_code == 201
    _, answer = switch.other_retailer.reverse(purchase["id"], [])
    assert answer.status_code == 404
    assert tx(switch, purchase["id"])["transaction"]["state"] == "approved"


def test_reused_ids_are_duplicates(switch: Switch) -> None:
    pos = switch.retailer
    purchase, answer = pos.purchase("TST001", 10000)
    assert answer.status_code == 201
    again = pos.post(f"/tokenPurchases/{purchase['id']}", purchase)
    assert again.status_code == 400 and again.json()["errorType"] == "DUPLICATE_RECORD"
    advice, answer = pos.confirm(purchase["id"], [])
    assert answer.status_code == 202
    again = pos.post(f"/tokenPurchases/{purchase['id']}/confirmations/{advice['id']}", advice)
    assert again.status_code == 400 and again.json()["errorType"] == "DUPLICATE_RECORD"


def test_bad_requests_get_clear_errors(switch: Switch) -> None:
    pos = switch.retailer
    some_id = new_id()
    answer = pos.http.post(f"/meterLookups/{some_id}", content=b'{"id": ', headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["errorType"] == "FORMAT_ERROR"
    assert "malformed JSON" in answer.json()["detailMessage"][0]["error"]

    message = base_message(
        pos.client_id, meter={"meterId": "TST001"}, purchaseAmount={"amount": "ten", "currency": 710}
    )
    del message["originator"]["terminalId"]
    message["time"] = "yesterday"
    answer = pos.post(f"/tokenPurchases/{message['id']}", message)
    assert answer.status_code == 400 and answer.json()["errorType"] == "FORMAT_ERROR"
    fields = {e["field"] for e in answer.json()["detailMessage"]}
    assert fields == {"originator.terminalId", "time", "purchaseAmount.amount", "purchaseAmount.currency"}

    message = base_message(pos.client_id, meter={"meterId": "TST001"})
    answer = pos.post(f"/meterLookups/{new_id()}", message)
    assert answer.status_code == 400 and answer.json()["detailMessage"][0]["field"] == "id"

    answer = pos.post(f"/meterLookups/{some_id}", [1, 2, 3])
    assert answer.status_code == 400 and answer.json()["errorType"] == "FORMAT_ERROR"

    huge = base_message(pos.client_id, meter={"meterId": "TST001"}, padding="x" * 100_000)
    answer = pos.post(f"/meterLookups/{huge['id']}", huge)
    assert answer.status_code == 413 and answer.json()["errorType"] == "FORMAT_ERROR"


def test_authentication(switch: Switch) -> None:
    message = base_message("retailer-1", meter={"meterId": "TST001"})
    url = f"{switch.url}/prepaidutility/v3/meterLookups/{message['id']}"
    assert httpx.post(url, json=message).status_code == 401
    assert httpx.post(url, json=message, auth=("till", "wrong")).status_code == 401
    assert httpx.post(url, json=message, auth=("nobody", "s3cret-till")).status_code == 401
    answer = httpx.post(url, json=message, auth=("other", "other-pass"))
    assert answer.status_code == 403
    assert answer.json()["detailMessage"][0]["field"] == "client.id"
    assert httpx.post(url, json=message, auth=("till", "s3cret-till")).status_code == 201


def test_no_route_is_a_json_404(switch: Switch) -> None:
    answer = httpx.post(f"{switch.url}/prepaidutility/v3/nothing", json={})
    assert answer.status_code == 404 and answer.json()["errorType"] == "GENERAL_ERROR"


def test_openapi_document(switch: Switch) -> None:
    document = httpx.get(switch.url + "/openapi.json").json()
    assert "/prepaidutility/v3/tokenPurchases/{id}/retry" in document["paths"]
    assert "PurchaseRequest" in document["components"]["schemas"]
    assert "/suv/v1/vouchers/{provisionId}/retry" in document["paths"]
    assert set(document["paths"]["/suv/v1/vouchers"]) == {"get", "post"}
    assert "SuvProvisionRequest" in document["components"]["schemas"]


def test_tx_list_filters(switch: Switch) -> None:
    purchase, answer = switch.retailer.purchase("TST009", 20000)
    assert answer.status_code == 201
    rows = [json.loads(line) for line in switch.cli("tx", "list", "--meter", "TST009", "--json").stdout.splitlines()]
    assert purchase["id"] in {r["retail_id"] for r in rows}
    assert {r["meter_id"] for r in rows} == {"TST009"}
    rows = [json.loads(line) for line in switch.cli("tx", "list", "--state", "declined", "--json").stdout.splitlines()]
    assert purchase["id"] not in {r["retail_id"] for r in rows}
    assert all(r["state"] == "declined" for r in rows)
    rows = switch.cli("tx", "list", "--client", "retailer-2", "--meter", "TST009", "--json").stdout.splitlines()
    assert rows == []
    text = switch.cli("tx", "show", purchase["id"]).stdout
    assert "xhuma -> sim" in text and "retailer <- xhuma" in text
    bad = switch.cli("tx", "list", "--since", "not-a-date", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr + bad.stdout


def test_a_hundred_purchases_for_one_meter_at_once_get_tokens_it_would_accept(switch: Switch) -> None:
    """A meter refuses a token whose identifier (TID) it has seen: every token must carry a new one."""
    pos = switch.retailer
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: pos.purchase("TST001", 10000)[1], range(100)))
    assert [a.status_code for a in answers] == [201] * 100, [a.text for a in answers if a.status_code != 201][:1]
    tokens = [t["token"] for a in answers for t in a.json()["tokens"] if t["tokenType"] == "STD"]
    assert len(tokens) == 100 and all(verify_token(t) for t in tokens)
    assert len({token_identifier(t) for t in tokens}) == 100
