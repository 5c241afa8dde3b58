"""Matching edges, in process (DuckDB in memory): drift at its bound and one past, grouped
strategies, rule order, automatic resolution and expiry."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from xhuma.finance.matching import Record, Result, match
from xhuma.finance.processes import Process

T = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
SECOND = 1_000_000


def process(*rules: dict[str, Any], **extra: Any) -> Process:
    raw = {
        "name": "p",
        "service": "ppu",
        "counterparty": "sim",
        "file": {"columns": {"reference": "ref", "amount": "amount", "time": "time"}},
        "rules": list(rules),
        **extra,
    }
    return msgspec.convert(raw, Process)


def by_id(results: list[Result]) -> dict[str, Result]:
    return {f"{r.side}:{r.id}": r for r in results}


REF_AMOUNT_TIME = {
    "criteria": [
        {"field": "reference"},
        {"field": "amount", "drift": 5},
        {"field": "time", "drift": 60},
    ]
}


def test_amount_and_time_drift_match_at_the_bound_and_not_one_past() -> None:
    ours = [Record("a", "a", 1000, T), Record("b", "b", 1000, T), Record("c", "c", 1000, T), Record("d", "d", 1000, T)]
    theirs = [
        Record("1", "a", 1005, T + 60 * SECOND),  # both at the bound
        Record("2", "b", 995, T - 60 * SECOND),  # at the bound, the other way
        Record("3", "c", 1006, T),  # one cent past
        Record("4", "d", 1000, T + 61 * SECOND),  # one second past
    ]
    got = by_id(match(process(REF_AMOUNT_TIME), ours, theirs))
    assert got["ours:a"].status == "matched" and got["ours:a"].counterparts == ("1",)
    assert got["ours:b"].status == "matched" and got["ours:a"].rule == "rule 1"
    assert got["ours:c"].status == "partially_matched"
    assert got["ours:c"].differences == {"amount": 6}
    assert got["theirs:3"].differences == {"amount": 6}
    assert got["ours:d"].status == "partially_matched"
    assert got["ours:d"].differences == {"time": 61}


def test_a_percentage_drift_is_a_fraction_of_our_amount() -> None:
    rule = {"criteria": [{"field": "reference"}, {"field": "amount", "drift": "1%"}]}
    ours = [Record("a", "a", 10_000, T), Record("b", "b", 10_000, T)]
    theirs = [Record("1", "a", 10_100, T), Record("2", "b", 10_101, T)]
    got = by_id(match(process(rule), ours, theirs))
    assert got["ours:a"].status == "matched"
    assert got["ours:b"].status == "partially_matched" and got["ours:b"].differences == {"amount": 101}


def test_unmatched_names_the_missing_side_and_expired_ones_expire() -> None:
    ours = [Record("a", "a", 100, T), Record("old", "old", 100, T, expires=True)]
    theirs = [Record("1", "zzz", 100, T)]
    got = by_id(match(process(REF_AMOUNT_TIME), ours, theirs))
    assert got["ours:a"].status == "unmatched" and got["ours:a"].missing == "theirs"
    assert got["theirs:1"].status == "unmatched" and got["theirs:1"].missing == "ours"
    assert got["ours:old"].status == "expired" and got["ours:old"].missing == "theirs"


def test_one_to_many_matches_a_split_payment_by_its_sum() -> None:
    rule = {"criteria": [{"field": "reference"}, {"field": "amount"}], "strategy": "one_to_many"}
    ours = [Record("a", "a", 300, T), Record("b", "b", 300, T)]
    theirs = [Record("1", "a", 100, T), Record("2", "a", 200, T), Record("3", "b", 100, T), Record("4", "b", 100, T)]
    got = by_id(match(process(rule), ours, theirs))
    assert got["ours:a"].status == "matched" and got["ours:a"].counterparts == ("1", "2")
    assert got["theirs:2"].status == "matched" and got["theirs:2"].counterparts == ("a",)
    assert got["ours:b"].status == "partially_matched" and got["ours:b"].differences == {"amount": -100}
    assert got["ours:b"].counterparts == ("3", "4")


def test_many_to_one_matches_a_batch_of_ours_against_one_of_theirs() -> None:
    rule = {"criteria": [{"field": "meter"}, {"field": "amount"}], "strategy": "many_to_one"}
    ours = [Record("a", "a", 100, T, meter="M1"), Record("b", "b", 250, T, meter="M1")]
    theirs = [Record("1", "batch", 350, T, meter="M1")]
    got = by_id(match(process(rule), ours, theirs))
    assert got["theirs:1"].status == "matched" and got["theirs:1"].counterparts == ("a", "b")
    assert got["ours:b"].status == "matched"


def test_one_to_one_never_gives_one_record_two_partners() -> None:
    ours = [Record("a", "x", 100, T), Record("b", "x", 100, T + SECOND)]
    theirs = [Record("1", "x", 100, T + SECOND)]
    got = by_id(match(process(REF_AMOUNT_TIME), ours, theirs))
    assert got["theirs:1"].counterparts == ("b",)  # the closer in time
    assert got["ours:a"].status == "unmatched"


def test_rules_run_in_order_and_a_record_taken_is_not_offered_again() -> None:
    exact = {"name": "exact", "criteria": [{"field": "reference"}, {"field": "amount"}]}
    loose = {"name": "by meter", "criteria": [{"field": "meter"}, {"field": "amount", "drift": 50}]}
    ours = [Record("a", "a", 100, T, meter="M"), Record("b", "b", 100, T, meter="M")]
    theirs = [Record("1", "a", 100, T, meter="M"), Record("2", "other", 130, T, meter="M")]
    got = by_id(match(process(exact, loose), ours, theirs))
    assert got["ours:a"].rule == "exact" and got["ours:a"].counterparts == ("1",)
    assert got["ours:b"].rule == "by meter" and got["ours:b"].counterparts == ("2",)
    # the other order: the loose rule, first, may take whatever it likes; the exact one gets the rest
    swapped = by_id(match(process(loose, exact), ours, theirs))
    assert {swapped["ours:a"].rule, swapped["ours:b"].rule} == {"by meter"}


def test_contains_before_after_and_greater_than() -> None:
    rule = {
        "criteria": [
            {"field": "reference", "operator": "contains"},
            {"field": "time", "operator": "after", "drift": 10},
            {"field": "amount", "operator": "greater_than", "drift": 20},
        ]
    }
    ours = [Record("a", "abc", 100, T), Record("b", "bcd", 100, T), Record("c", "cde", 100, T)]
    theirs = [
        Record("1", "XX-abc", 120, T + 10 * SECOND),
        Record("2", "XX-bcd", 120, T - SECOND),  # before ours: not "after"
        Record("3", "XX-cde", 100, T + SECOND),  # not greater
    ]
    got = by_id(match(process(rule), ours, theirs))
    assert got["ours:a"].status == "matched"
    assert got["ours:b"].status == "partially_matched" and set(got["ours:b"].differences) == {"time"}
    assert got["ours:c"].status == "partially_matched" and got["ours:c"].differences == {"amount": 0}
    before = {"criteria": [{"field": "reference"}, {"field": "time", "operator": "before", "drift": 5}]}
    got = by_id(match(process(before), [Record("a", "a", 1, T)], [Record("1", "a", 1, T - 5 * SECOND)]))
    assert got["ours:a"].status == "matched"


@pytest.mark.parametrize(("difference", "status"), [(10, "matched"), (-10, "matched"), (11, "partially_matched")])
def test_auto_resolution_accepts_an_amount_difference_within_its_bound(difference: int, status: str) -> None:
    auto = [{"within_cents": 10, "in_favour_of": "sim"}]
    rule = {"criteria": [{"field": "reference"}, {"field": "amount"}]}
    got = by_id(
        match(process(rule, auto_resolutions=auto), [Record("a", "a", 500, T)], [Record("1", "a", 500 + difference, T)])
    )
    assert got["ours:a"].status == status
    assert got["ours:a"].differences == {"amount": difference}
    assert got["ours:a"].resolution == ("auto: in favour of sim" if status == "matched" else None)


def test_a_partial_match_with_another_difference_is_not_auto_resolved() -> None:
    auto = [{"within_cents": 10, "in_favour_of": "xhuma"}]
    rule = {"criteria": [{"field": "reference"}, {"field": "amount"}, {"field": "type"}]}
    got = by_id(
        match(
            process(rule, auto_resolutions=auto),
            [Record("a", "a", 500, T, type="purchase")],
            [Record("1", "a", 505, T, type="refund")],
        )
    )
    assert got["ours:a"].status == "partially_matched"
    assert got["ours:a"].differences == {"amount": 5, "type": "purchase / refund"}


def test_nothing_to_match() -> None:
    assert match(process(REF_AMOUNT_TIME), [], []) == []
