"""Inbound decoding: every bad field is named, and no input makes the decoder crash."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import base_message
from xhuma.ppu import wire
from xhuma.validation import InvalidMessage, decode

VALID = base_message("c1", meter={"meterId": "TST001"}, purchaseAmount={"amount": "10000", "currency": "710"})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


ALL_PATHS = paths(VALID)


def test_valid_message_decodes_with_numeric_string_amount() -> None:
    message = decode(msgspec.json.encode(VALID), wire.PurchaseRequest)
    assert message.purchase_amount.amount == 10000


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    try:
        decode(body, wire.PurchaseRequest)
    except InvalidMessage as exc:
        assert exc.errors


@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), json_values), min_size=1, max_size=4))
def test_mutated_messages_are_decoded_or_refused_with_named_fields(mutations: list[tuple[Any, Any]]) -> None:
    message = copy.deepcopy(VALID)
    for path, value in mutations:
        target = message
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        decode(msgspec.json.encode(message), wire.PurchaseRequest)
    except InvalidMessage as exc:
        assert exc.errors and all(e.field for e in exc.errors)


def test_every_missing_required_field_is_named() -> None:
    message = copy.deepcopy(VALID)
    del message["meter"]["meterId"]
    del message["originator"]["merchant"]["merchantName"]["city"]
    del message["client"]
    with pytest.raises(InvalidMessage) as caught:
        decode(msgspec.json.encode(message), wire.PurchaseRequest)
    assert {e.field for e in caught.value.errors} == {
        "meter.meterId",
        "originator.merchant.merchantName.city",
        "client",
    }


def test_unknown_fields_can_be_refused_by_path() -> None:
    message = copy.deepcopy(VALID)
    message["meter"]["colour"] = "blue"
    message["purchaseAmount"]["amount"] = 10000
    body = msgspec.json.encode(message)
    decode(body, wire.PurchaseRequest)  # tolerated by default, as PPU requires
    errors = [e for e in _errors(body, forbid_unknown=True)]
    assert [e.field for e in errors] == ["meter.colour"]


def _errors(body: bytes, forbid_unknown: bool) -> list[Any]:
    from xhuma.validation import field_errors

    return field_errors(msgspec.json.decode(body), wire.PurchaseRequest, forbid_unknown=forbid_unknown)
