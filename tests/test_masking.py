"""Masking of card data and secrets: the masker's properties, and a purchase with a card tender
through real processes that leaves no full card number, track, CVV or PIN block in the database
or the logs, while the provider received them intact."""

from __future__ import annotations

import copy
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select

from tests.conftest import write_config
from tests.support import Retailer, Server, base_message, free_port, process_env, xhuma
from tests.test_ppu_switch import eventually
from xhuma.ppu import wire
from xhuma.security.masking import (
    HIDDEN,
    install_log_masking,
    mask_body,
    mask_bytes,
    mask_field,
    mask_pan,
    mask_text,
    masked,
)
from xhuma.storage import tables
from xhuma.storage.db import MIGRATIONS, migrate, schema_revision
from xhuma.storage.tables import metadata
from xhuma.validation import InvalidMessage, decode

PROPERTIES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""The machine is shared: examples are not timed."""


def luhn_complete(prefix: str) -> str:
    """`prefix` with the check digit that makes it pass Luhn."""
    for check in "0123456789":
        digits = prefix + check
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(digits)))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


pans = st.integers(12, 18).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)).map(luhn_complete)


def expected_mask(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


# --- the masker, pure -------------------------------------------------------------------------


@PROPERTIES
@given(pan=pans, key=st.sampled_from(["cardNumber", "pan", "card_number", "primaryAccountNumber"]))
def test_a_card_number_in_a_card_field_keeps_its_first_six_and_last_four(pan: str, key: str) -> None:
    message = {"tenders": [{"tenderType": "CREDIT_CARD", key: pan}], "paymentMethods": [{"type": "CARD", key: pan}]}
    shown = masked(message)
    assert shown["tenders"][0][key] == expected_mask(pan) == shown["paymentMethods"][0][key]
    assert pan not in mask_body(json.dumps(message))
    # A masked card number still fits the interfaces' own pattern, so a stored request re-sent
    # by a retry or by store-and-forward still decodes.
    tender = {"tenderType": "CREDIT_CARD", "amount": {"amount": 1, "currency": "710"}, "cardNumber": expected_mask(pan)}
    assert decode(json.dumps(tender).encode(), wire.Tender).card_number == expected_mask(pan)


product_fields = st.sampled_from(
    ["code", "serialNumber", "token", "meterId", "id", "reference", "transactionIdentifier", "merchantId", "text"]
)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), pans, st.text(max_size=30))


@PROPERTIES
@given(values=st.dictionaries(product_fields, json_leaves, max_size=6), nested=product_fields)
def test_fields_that_are_not_card_fields_are_never_touched(values: dict[str, Any], nested: str) -> None:
    """Voucher codes, tokens, meter numbers, ids and slip text are what is sold or re-sent;
    many are Luhn-valid 16-digit numbers: none is masked for what it looks like."""
    message = {**values, nested: {"voucher": values, "slipData": {"messageLines": [{"text": str(values)}]}}}
    text = msgspec.json.encode(message).decode()
    assert masked(message) == message
    assert mask_body(text) is text


def test_a_voucher_answer_with_a_luhn_valid_code_is_stored_as_it_is() -> None:
    """The earlier attempt's trap: a 16-digit voucher code passing Luhn was masked in the stored
    answer, and a retry replayed it masked."""
    code = luhn_complete("122463000000358")
    answer = json.dumps({"id": "x", "voucher": {"code": code, "serialNumber": code}, "slipData": {"text": code}})
    assert mask_body(answer) == answer


messages = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["cardNumber", "cvv", "pinBlock", "password", "errorMessage", "pin", "type"]),
                product_fields,
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@PROPERTIES
@given(message=messages)
def test_masking_twice_is_masking_once(message: Any) -> None:
    once = masked(message)
    assert masked(once) == once
    assert masked(message, scan=True) == masked(masked(message, scan=True), scan=True)
    text = msgspec.json.encode(message).decode()
    assert mask_body(mask_body(text)) == mask_body(text)


@PROPERTIES
@given(message=messages)
def test_masking_leaves_the_message_to_be_sent_as_it_was(message: Any) -> None:
    """What goes upstream (or back to the retailer) is never the masked copy."""
    before = copy.deepcopy(message)
    body = msgspec.json.encode(message)
    masked(message)
    mask_bytes(body)
    assert message == before and body == msgspec.json.encode(before)


@PROPERTIES
@given(pan=pans, words=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20))
def test_a_card_number_in_free_text_is_masked(pan: str, words: str) -> None:
    text = f"{words} {pan} {words}"
    assert mask_text(text) == f"{words} {expected_mask(pan)} {words}"
    assert mask_text(mask_text(text)) == mask_text(text)


def test_free_text_keeps_what_is_not_a_card_number() -> None:
    token = "12345678901234567890"  # an STS token: 20 digits
    not_luhn = "4111111111111112"
    spaced_token = "1234 5678 9012 3456 7890"
    text = f"token {token} ref {not_luhn} t {spaced_token} at 2026-12-04T01:30:22Z meter 01234567890"
    assert mask_text(text) == text


def test_free_text_hides_credentials_and_secret_pairs() -> None:
    text = (
        'Authorization: Basic dXNlcjpwYXNz, "cvv": "123", password=hunter2&x=1, Bearer abc.def.ghi,'
        ' cardNumber=4111111111111111, {"pinBlock":"0123456789ABCDEF"}'
    )
    shown = mask_text(text)
    for secret in ("dXNlcjpwYXNz", "123", "hunter2", "abc.def.ghi", "4111111111111111", "0123456789ABCDEF"):
        assert secret not in shown
    assert "411111******1111" in shown and "x=1" in shown


def test_secrets_hidden_whole_and_pins_by_their_kind() -> None:
    message = {
        "meter": {"meterId": "01234567890", "track2Data": "0123456789012345678901234567890123"},
        "paymentMethods": [
            {
                "type": "CARD",
                "pan": "4111111111111111",
                "track2": "4111111111111111=28121010000000000000",
                "cvv": "123",
                "encryptedPin": "ABCDEF",
                "pin": {
                    "type": "ENCRYPTED_PIN",
                    "pinBlock": "0123456789ABCDEF",
                    "encryptionParameters": {"accountNumber": "111111111111", "keyIndex": "1"},
                },
            },
            {"type": "LOYALTY_CARD", "pin": {"type": "CLEAR_PIN", "pin": "1234"}},
            {"type": "AN_32_TOKEN", "token": "a" * 32, "pin": {"type": "HASHED_PIN", "hash": "ABC123"}},
        ],
        "voucher": {"code": "1234", "pin": "9876"},
        "client_secret": "s3cret",
        "errorMessage": "card 4111111111111111 declined",
    }
    shown = masked(message)
    card, loyalty, token = shown["paymentMethods"]
    assert (card["pan"], card["track2"], card["cvv"], card["encryptedPin"]) == ("411111******1111", *[HIDDEN] * 3)
    assert card["pin"]["pinBlock"] == HIDDEN
    assert card["pin"]["encryptionParameters"] == {"accountNumber": "111111**1111", "keyIndex": "1"}
    assert loyalty["pin"] == {"type": "CLEAR_PIN", "pin": HIDDEN}
    assert token["pin"] == {"type": "HASHED_PIN", "hash": HIDDEN} and token["token"] == "a" * 32
    assert shown["voucher"] == {"code": "1234", "pin": "9876"}  # the product sold: kept (README)
    assert shown["meter"] == message["meter"]  # the meter card's track: kept (README)
    assert shown["client_secret"] == HIDDEN
    assert shown["errorMessage"] == "card 411111******1111 declined"


def test_short_numbers_and_header_lines() -> None:
    assert mask_pan("411111") == "411111" and mask_pan("4111112222") == "411111****"
    assert mask_pan("4111 1111 1111 1111") == "4111 11** **** 1111"
    assert mask_text("Authorization: Bearer eyJhbGciOi.x.y\r\nHost: a") == "Authorization: ****\r\nHost: a"


def test_an_error_naming_a_bad_card_field_does_not_echo_the_number() -> None:
    body = base_message("r1", meter={"meterId": "A1"}, purchaseAmount={"amount": 1, "currency": "710"})
    body["tenders"] = [
        {"tenderType": "CREDIT_CARD", "amount": {"amount": 1, "currency": "710"}, "cardNumber": "4111111111111111X"}
    ]
    with pytest.raises(InvalidMessage) as refused:
        decode(json.dumps(body).encode(), wire.PurchaseRequest)
    (error,) = refused.value.errors
    assert error.field == "tenders[0].cardNumber" and error.invalid_value == "411111******1111X"
    assert mask_field("cvv", 123) == HIDDEN


def test_log_records_are_masked_whichever_handler_writes_them() -> None:
    install_log_masking()
    install_log_masking()  # once is enough; twice is once
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("xhuma.test_masking")
    log.addHandler(handler)
    try:
        log.warning("tender %s with cvv=%s", "4111111111111111", "123")
        try:
            raise ValueError('bad tender {"cardNumber": "5500005555555559", "pinBlock": "0123456789ABCDEF"}')
        except ValueError:
            log.exception("Authorization: Basic dXNlcjpwYXNz failed")
    finally:
        log.removeHandler(handler)
    written = out.getvalue()
    for secret in ("4111111111111111", "cvv=123", "5500005555555559", "0123456789ABCDEF", "dXNlcjpwYXNz"):
        assert secret not in written
    assert "411111******1111" in written and "550000******5559" in written and "ValueError" in written


# --- end to end: a purchase with a card tender through the real processes ------------------

PAN = "4111111111111111"
TENDER_PAN = "5500005555555559"
TRACK2 = "4111111111111111=28121010000012345678"
CVV = "937"
PIN_BLOCK = "0412AC89FE3B7D61"
SECRETS = (PAN, TENDER_PAN, TRACK2, PIN_BLOCK, f'"{CVV}"')


@pytest.fixture
def card_switch(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    sim_port, port = free_port(), free_port()
    simulator = Server(
        ["simulate", "ppu", "--port", str(sim_port), "--seed", "3"], sim_port, process_env(), tmp_path / "sim.log"
    )
    config = write_config(tmp_path / "xhuma.toml", simulator.url)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret")
    xhuma("clients", "add", "--username", "till", "--password", "s3cret-till", "--client-id", "r1", env=env)
    switch = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    try:
        yield switch, simulator, env
    finally:
        switch.stop()
        simulator.stop()


def _card_purchase(client_id: str) -> dict[str, Any]:
    message = base_message(client_id, meter={"meterId": "TST001"}, purchaseAmount={"amount": 10000, "currency": "710"})
    message["tenders"] = [
        {"tenderType": "CREDIT_CARD", "amount": {"amount": 10000, "currency": "710"}, "cardNumber": TENDER_PAN}
    ]
    message["paymentMethods"] = [
        {
            "type": "CARD",
            "pan": PAN,
            "expiryDate": "2812",
            "track2": TRACK2,
            "cvv": CVV,
            "pin": {"type": "ENCRYPTED_PIN", "pinBlock": PIN_BLOCK},
        }
    ]
    return message


def _found_in_database(url: str, needle: str) -> list[str]:
    """Where `needle` is in the database: the files' bytes (SQLite, with its WAL) or the text of
    every row of every table (PostgreSQL)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return [f.name for f in path.parent.glob(path.name + "*") if needle.encode() in f.read_bytes()]
    with psycopg.connect(url) as conn:
        return [
            table
            for table in metadata.tables
            if conn.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', (f"%{needle}%",)).fetchone()[0]  # type: ignore[index]
        ]


def test_a_card_purchase_leaves_no_card_data_in_the_database_or_the_logs(
    card_switch: tuple[Server, Server, dict[str, str]], fresh_database_url: str
) -> None:
    switch, simulator, env = card_switch
    pos = Retailer(switch.url, "till", "s3cret-till", "r1")
    purchase = _card_purchase("r1")
    bought = pos.post(f"/tokenPurchases/{purchase['id']}", purchase)
    assert bought.status_code == 201, bought.text
    identifiers = bought.json()["thirdPartyIdentifiers"]

    # The provider received the card data intact: only our copies are masked.
    (sale,) = httpx.get(simulator.url + "/_sim/ledger").json()["purchases"]
    assert sale["tenders"][0]["cardNumber"] == TENDER_PAN
    assert sale["paymentMethods"] == purchase["paymentMethods"]

    # A retry is answered from the journal with the tokens sold, unmasked.
    retried = pos.retry(purchase)
    assert retried.status_code == 201 and retried.json()["tokens"] == bought.json()["tokens"]

    # The confirmation's acknowledgement echoes the advice with its card number masked, and the
    # advice store-and-forward delivers carries the masked number the interface's tender allows.
    tenders = [{"tenderType": "DEBIT_CARD", "amount": {"amount": 10000, "currency": "710"}, "cardNumber": PAN}]
    _, confirmed = pos.advice("confirmations", purchase["id"], identifiers, tenders=tenders)
    assert confirmed.status_code == 202, confirmed.text
    assert confirmed.json()["tenders"][0]["cardNumber"] == "411111******1111"

    # A refused message with a card number is journalled masked; its error echoes it masked.
    bad = {**_card_purchase("r1"), "purchaseAmount": {"amount": "lots", "currency": "710"}}
    bad["tenders"][0]["cardNumber"] = TENDER_PAN + "X"
    refused = pos.post(f"/tokenPurchases/{bad['id']}", bad)
    assert refused.status_code == 400 and TENDER_PAN not in refused.text

    advices = eventually(lambda: httpx.get(simulator.url + "/_sim/ledger").json()["advices"], bool)
    assert advices and advices[0]["tenders"][0]["cardNumber"] == "411111******1111"

    shown = xhuma("tx", "show", purchase["id"], "--json", env=env).stdout
    assert "550000******5559" in shown and "411111******1111" in shown
    rejected = xhuma("tx", "rejected", "--json", env=env).stdout
    for text in (shown, rejected):
        for secret in SECRETS:
            assert secret not in text

    switch.stop()  # everything written, the WAL included
    for secret in SECRETS:
        assert _found_in_database(fresh_database_url, secret) == [], secret
        assert secret not in switch.log.read_text()
    # The scan looks where the data would be: the masked forms are there.
    assert _found_in_database(fresh_database_url, "550000******5559")


def test_rows_journalled_before_masking_are_masked_by_the_upgrade(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    code = luhn_complete("122463000000358")  # a voucher code: the product, kept
    body = json.dumps({"tenders": [{"cardNumber": PAN}], "cvv": CVV, "voucher": {"code": code}})
    tx_id, rejection_id = str(uuid.uuid4()), str(uuid.uuid4())
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0016")
        stamps = {"created_us": 1, "updated_us": 1}
        conn.execute(
            insert(tables.transactions).values(
                id=tx_id, client_id="r1", retail_id="p1", id_space="request", kind="purchase", state="approved",
                upstream_request=body, retail_response=body, **stamps,
            )
        )  # fmt: skip
        conn.execute(
            insert(tables.messages).values(
                tx_id=tx_id, leg="retail", direction="request", operation="PURCHASE", body=body, at_us=1
            )
        )
        conn.execute(
            insert(tables.saf_entries).values(
                queue="ppu:sim", tx_id=tx_id, operation="CONFIRMATION", method="POST", url="http://sim/x",
                body=body, state="pending", attempts=0, next_attempt_us=1, last_error=f"card {PAN}", **stamps,
            )
        )  # fmt: skip
        conn.execute(
            insert(tables.rejected_messages).values(
                id=rejection_id, at_us=1, interface="ppu", operation="PURCHASE", status=400,
                reason=f"card {PAN}", body=f"{{not json {PAN}",
            )
        )  # fmt: skip
        conn.execute(
            insert(tables.reconciliation_exceptions).values(
                tx_id=tx_id, reason="delivery_stopped", detail=f"card {PAN}", state="open", **stamps
            )
        )
    migrate(engine)
    migrate(engine)  # twice is once
    current, newest = schema_revision(engine)
    assert current == newest
    with engine.connect() as conn:
        stored = [
            *conn.execute(select(tables.transactions.c.upstream_request, tables.transactions.c.retail_response)).one(),
            conn.execute(select(tables.messages.c.body)).scalar_one(),
            *conn.execute(select(tables.saf_entries.c.body, tables.saf_entries.c.last_error)).one(),
            *conn.execute(select(tables.rejected_messages.c.body, tables.rejected_messages.c.reason)).one(),
            conn.execute(select(tables.reconciliation_exceptions.c.detail)).scalar_one(),
        ]
    engine.dispose()
    assert len(stored) == 8
    for text in stored:
        assert PAN not in text and "411111******1111" in text
    for json_body in stored[:3]:
        assert json.loads(json_body) == {
            "tenders": [{"cardNumber": "411111******1111"}],
            "cvv": HIDDEN,
            "voucher": {"code": code},
        }
