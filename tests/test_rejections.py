"""Refusals before any transaction is opened are journalled in `rejected_messages`, with their
status, error type and reason, and listed by `xhuma tx rejected` (PPU and SUV, real HTTP)."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Switch
from tests.support import base_message, new_id, now
from tests.test_vouchers import Channel
from xhuma.storage import journal
from xhuma.storage.db import Database, migrate
from xhuma.storage.journal import REJECTED_BODY_CAP, Journal, Rejection

PPU = "/prepaidutility/v3"


def rejected(switch: Switch, **wanted: Any) -> list[dict[str, Any]]:
    out = switch.cli("tx", "rejected", "--json", "--limit", "1000").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in rows if all(r[k] == v for k, v in wanted.items())]


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]


def test_ppu_refusals_are_journalled(switch: Switch) -> None:
    pos = switch.retailer
    message = base_message(pos.client_id, meter={"meterId": "TST001"})
    lookup = f"{switch.url}{PPU}/meterLookups/{message['id']}"
    assert httpx.post(lookup, json=message).status_code == 401
    assert httpx.post(lookup, json=message, auth=("till", "wrong")).status_code == 401
    assert httpx.post(lookup, json=message, auth=("other", "other-pass")).status_code == 403

    huge = base_message(pos.client_id, meter={"meterId": "TST001"}, padding="x" * 100_000)
    assert pos.post(f"/meterLookups/{huge['id']}", huge).status_code == 413

    bad = base_message(pos.client_id, meter={})
    assert pos.post(f"/meterLookups/{bad['id']}", bad).status_code == 400
    elsewhere = base_message(pos.client_id, meter={"meterId": "TST001"})
    assert pos.post(f"/meterLookups/{new_id()}", elsewhere).status_code == 400

    purchase, answer = pos.purchase("TST001", 10000)
    assert answer.status_code == 201
    assert pos.post(f"/tokenPurchases/{purchase['id']}", purchase).status_code == 400
    unknown = new_id()
    _, answer = pos.confirm(unknown, [])
    assert answer.status_code == 404

    rows = rejected(switch, retail_id=message["id"])
    assert {(r["status"], r["error_type"], r["reason"], r["client_id"]) for r in rows} == {
        (401, "GENERAL_ERROR", "no credentials", None),
        (401, "GENERAL_ERROR", "bad credentials for till", None),
        (403, "GENERAL_ERROR", "client.id retailer-1 is not the authenticated client retailer-2", "retailer-2"),
    }
    assert all(r["interface"] == "ppu" and r["operation"] == "createMeterLookup" for r in rows)
    assert all(r["url"] == f"{PPU}/meterLookups/{message['id']}" for r in rows)

    too_large = only(rejected(switch, retail_id=huge["id"]))
    assert (too_large["status"], too_large["error_type"]) == (413, "FORMAT_ERROR")
    assert too_large["reason"] == "body exceeds 65536 bytes" and too_large["client_id"] == "retailer-1"

    malformed = only(rejected(switch, retail_id=bad["id"]))
    assert (malformed["status"], malformed["error_type"]) == (400, "FORMAT_ERROR")
    assert malformed["reason"] == "field meter.meterId: is required"
    assert json.loads(malformed["body"]) == bad

    mismatch = only(rejected(switch, retail_id=elsewhere["id"]))
    assert mismatch["error_type"] == "FORMAT_ERROR" and mismatch["reason"].startswith("field id: does not match")

    duplicate = only(rejected(switch, retail_id=purchase["id"]))
    assert (duplicate["status"], duplicate["error_type"], duplicate["reason"]) == (
        400,
        "DUPLICATE_RECORD",
        "retail id taken",
    )
    assert duplicate["operation"] == "createTokenPurchaseRequest"
    assert json.loads(duplicate["body"])["id"] == purchase["id"]

    advice = only([r for r in rejected(switch, status=404) if unknown in r["reason"]])
    assert advice["error_type"] == "UNABLE_TO_LOCATE_RECORD" and advice["reason"] == f"no purchase {unknown} to advise"

    listed = switch.cli("tx", "rejected", "--limit", "5").stdout
    assert "rejected" not in listed and "ppu" in listed and "advise" in listed


def test_a_client_that_writes_a_6_mb_body_before_reading_gets_the_answer_not_a_reset(switch: Switch) -> None:
    """urllib writes the whole body (and asks to close the connection) before it reads: the 413,
    or the 401 without credentials, must reach it rather than a connection reset."""
    body = b"x" * (6 * 1024 * 1024)
    url = f"{switch.url}{PPU}/meterLookups/{new_id()}"
    credentials = {"Authorization": "Basic " + base64.b64encode(b"till:s3cret-till").decode()}
    for headers, status, error_type in [(credentials, 413, "FORMAT_ERROR"), ({}, 401, "GENERAL_ERROR")]:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == status
        assert json.loads(refused.value.read())["errorType"] == error_type


def test_suv_refusals_are_journalled(switch: Switch) -> None:
    channel = Channel(switch.url, "till", "s3cret-till", "retailer-1")
    body = channel.request(product={"productId": "GIFT-100"})
    stranger = f"nobody-{new_id()[:8]}"
    assert httpx.post(f"{switch.url}/suv/v1/vouchers", json=body, auth=(stranger, "x")).status_code == 401

    assert channel.http.post("/vouchers", json={**body, "padding": "x" * 100_000}).status_code == 413

    bad = channel.request(product={"productId": "GIFT-100"}, surprise=1)
    assert channel.http.post("/vouchers", json=bad).status_code == 400

    theirs = Channel(switch.url, "other", "other-pass", "retailer-2")
    assert theirs.http.post("/vouchers", json=body).status_code == 400

    unknown = new_id()
    _, answer = channel.advice("/vouchers/confirmations", unknown)
    assert answer.status_code == 404

    first = {"id": new_id(), "requestId": new_id(), "time": now(), "thirdPartyIdentifiers": []}
    first["reversalReason"] = "CANCELLED"
    assert channel.http.post("/vouchers/reversals", json=first).status_code == 404  # remembered, not refused
    assert channel.http.post("/vouchers/reversals", json=first).status_code == 400

    unauthorized = only(rejected(switch, reason=f"bad credentials for {stranger}"))
    assert (unauthorized["interface"], unauthorized["status"], unauthorized["error_type"]) == (
        "suv",
        401,
        "AUTHENTICATION_ERROR",
    )
    assert unauthorized["client_id"] is None and unauthorized["operation"] == "provisionVoucher"

    too_large = only(rejected(switch, interface="suv", status=413))
    assert too_large["error_type"] == "FORMAT_ERROR" and too_large["reason"] == "body exceeds 65536 bytes"

    malformed = only(rejected(switch, retail_id=bad["id"]))
    assert (malformed["status"], malformed["error_type"]) == (400, "FORMAT_ERROR")
    assert malformed["reason"] == "field surprise: is not a known field"

    mismatch = only(rejected(switch, retail_id=body["id"], client_id="retailer-2"))
    assert (mismatch["status"], mismatch["error_type"]) == (400, "AUTHENTICATION_ERROR")
    assert mismatch["reason"] == "client.id retailer-1 is not the authenticated client retailer-2"

    advice = only([r for r in rejected(switch, interface="suv", status=404) if unknown in r["reason"]])
    assert advice["error_type"] == "UNABLE_TO_LOCATE_RECORD" and advice["operation"] == "confirmVoucher"

    duplicate = only(rejected(switch, retail_id=first["id"]))
    assert (duplicate["status"], duplicate["error_type"], duplicate["reason"]) == (
        400,
        "DUPLICATE_RECORD",
        "advice id taken",
    )


def test_a_rejection_keeps_a_capped_body_and_a_failed_write_is_not_raised(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(db.engine)
    rejection = Rejection("ppu", "meterLookup", 400, "FORMAT_ERROR", "r" * 900, body="é" * 100_000, url="/x")
    db.run_sync(journal.record_rejection(rejection))
    (row,) = db.run_sync(journal.rejections())
    assert len(row["body"].encode()) <= REJECTED_BODY_CAP and len(row["reason"]) == 500

    class Broken:
        async def run(self, op: Any) -> Any:
            raise RuntimeError("database away")

    asyncio.run(Journal(Broken()).record_rejection(rejection))  # type: ignore[arg-type]
