"""Fees against hand-computed figures (fixed, percentage with its rounding rule, marginal tiers,
min/max), `[[finance.fees]]` checked whole with the key named, and properties: a fee is never
negative and stays within its bounds, tiers do not care how a month is split, and a posting
always balances."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_finance_config import PROCESS, PROVIDER
from xhuma.config import ConfigError, load_settings
from xhuma.finance import posting
from xhuma.finance.fees import Accounts, FeeRule, Tier, fee_of, percentage_part
from xhuma.finance.settlement import FeeLine, Unit, direction, price, totals

TIERED = FeeRule(
    "commission",
    "sim",
    tiers=[Tier(0, "2"), Tier(30000, "1"), Tier(100000, "0.5")],
)
ACCOUNTS = Accounts("2100-SIM", "4100-SIM", "1100-BANK")


def test_fixed_and_percentage_fees_round_half_even_per_match() -> None:
    assert fee_of(FeeRule("f", "sim", fixed_cents=50), 123456) == 50
    assert fee_of(FeeRule("p", "sim", percent="1.5"), 10000) == 150
    eighth = FeeRule("p", "sim", percent="0.125")
    assert fee_of(eighth, 10000) == 12  # 12.5 -> 12 (to even)
    assert fee_of(eighth, 30000) == 38  # 37.5 -> 38 (to even)
    assert fee_of(eighth, 10001) == 13  # 12.50125 -> 13
    half = FeeRule("p", "sim", percent="50")
    assert [fee_of(half, cents) for cents in (1, 3, 5)] == [0, 2, 2]  # 0.5, 1.5, 2.5
    both = FeeRule("b", "sim", fixed_cents=30, percent="1")
    assert fee_of(both, 2550) == 30 + 26  # 25.5 -> 26


def test_tiers_charge_each_part_of_the_month_at_its_own_rate() -> None:
    assert fee_of(TIERED, 10000, 0) == 200  # all in the 2 % tier
    assert fee_of(TIERED, 25000, 10000) == 450  # 200.00 at 2 % (400) + 50.00 at 1 % (50)
    assert fee_of(TIERED, 10000, 30000) == 100  # just past the boundary: 1 %
    assert fee_of(TIERED, 1, 29999) == 0  # 0.02 -> 0
    assert fee_of(TIERED, 80000, 30000) == 700 + 50  # 700.00 at 1 % + 100.00 at 0.5 %
    assert percentage_part(TIERED, 100, 29950) == Decimal("1.5")  # 50 at 2 % + 50 at 1 %


def test_min_and_max_hold_a_fee_within_its_bounds() -> None:
    bounded = FeeRule("m", "sim", percent="2", min_cents=100, max_cents=400)
    assert [fee_of(bounded, cents) for cents in (1000, 10000, 30000)] == [100, 200, 400]
    floor_only = FeeRule("m", "sim", min_cents=75)
    assert fee_of(floor_only, 1) == 75


@pytest.mark.parametrize(
    ("fees", "message"),
    [
        (
            'percent = "1"\ntiers = [{ from_cents = 0, percent = "1" }]',
            "finance.fees[0].tiers: a fee has a percent or tiers",
        ),
        ('percent = "abc"', "finance.fees[0].percent: 'abc' is not a percentage"),
        ('percent = "101"', "finance.fees[0].percent: '101' is not a percentage from 0 to 100"),
        (
            'tiers = [{ from_cents = 5, percent = "1" }]',
            "finance.fees[0].tiers[0].from_cents: the first tier starts at 0",
        ),
        (
            'tiers = [{ from_cents = 0, percent = "1" }, { from_cents = 0, percent = "2" }]',
            "finance.fees[0].tiers[1].from_cents: tiers go up",
        ),
        ("fixed_cents = 1\nmin_cents = 5\nmax_cents = 4", "finance.fees[0].max_cents: below min_cents (5)"),
        ("fixed_cents = -1", "finance.fees[0].fixed_cents: expected `int` >= 0"),
        ("fixed = 5", "finance.fees[0].fixed: unknown key"),
        ('service = "ppu"', "finance.fees[0]: charges nothing"),
        ('fixed_cents = 1\npayer = "them"', "finance.fees[0].payer: invalid enum value 'them'"),
    ],
)
def test_a_fee_mistake_names_its_key(tmp_path: Path, fees: str, message: str) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(PROVIDER + PROCESS + f'\n[[finance.fees]]\nname = "f"\ncounterparty = "sim"\n{fees}\n')
    with pytest.raises(ConfigError, match="^" + str(path).replace(".", r"\.") + ": ") as raised:
        load_settings(path)
    assert message in str(raised.value)


def test_fees_and_accounts_name_a_reconciled_counterparty(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(PROVIDER + PROCESS + '\n[[finance.fees]]\nname = "f"\ncounterparty = "simm"\nfixed_cents = 1\n')
    with pytest.raises(ConfigError, match="finance.fees\\[0\\].counterparty: no process reconciles 'simm'; known: sim"):
        load_settings(path)
    path.write_text(PROVIDER + PROCESS + '\n[finance.accounts.bank]\nprincipal = "1"\nfees = "2"\nsettlement = "3"\n')
    with pytest.raises(ConfigError, match="finance.accounts.bank: no process reconciles 'bank'"):
        load_settings(path)
    path.write_text(PROVIDER + PROCESS + '\n[finance.accounts.sim]\nprincipal = "1"\nfees = "2"\n')
    with pytest.raises(ConfigError, match=r"finance.accounts\[...\].settlement: is required"):
        load_settings(path)


rules = st.builds(
    FeeRule,
    name=st.just("r"),
    counterparty=st.just("sim"),
    fixed_cents=st.integers(0, 1000),
    percent=st.one_of(st.none(), st.decimals(0, 100, places=3).map(str)),
    min_cents=st.one_of(st.none(), st.integers(0, 500)),
).filter(lambda r: r.min_cents is None or r.min_cents <= 500)
amounts = st.integers(0, 10**12)


@given(rules, st.integers(0, 1000), amounts, amounts)
def test_a_fee_is_never_negative_and_stays_within_its_bounds(
    rule: FeeRule, spread: int, amount: int, before: int
) -> None:
    low = rule.min_cents
    bounded = FeeRule(
        rule.name, rule.counterparty, fixed_cents=rule.fixed_cents, percent=rule.percent, min_cents=low,
        max_cents=None if low is None else low + spread,
    )  # fmt: skip
    fee = fee_of(bounded, amount, before)
    assert fee >= 0 and isinstance(fee, int)
    if low is not None:
        assert low <= fee <= low + spread


@given(st.integers(0, 200000), st.integers(0, 200000), st.integers(0, 200000))
def test_tiers_do_not_care_how_the_month_is_split(before: int, first: int, second: int) -> None:
    whole = percentage_part(TIERED, first + second, before)
    assert percentage_part(TIERED, first, before) + percentage_part(TIERED, second, before + first) == whole
    assert whole <= percentage_part(TIERED, first + second + 1, before)  # more volume never costs less


def unit(n: int, amount: int, category: str) -> Unit:
    return Unit(f"u{n}", "p", "ppu", category, "2026-01", n, None, amount, "710", "sim", None, "c", (("ours", str(n)),))


@given(
    st.lists(st.tuples(st.integers(1, 10**9), st.sampled_from(["sale", "reversed", "refund"])), max_size=20),
    st.sampled_from(["us", "counterparty"]),
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["us", "counterparty"])), max_size=4),
)
def test_a_posting_always_balances_and_its_settlement_line_is_the_net(
    sales: list[tuple[int, str]], payer: str, fees: list[tuple[int, str]]
) -> None:
    units = [unit(n, amount, category) for n, (amount, category) in enumerate(sales)]
    lines = [FeeLine(f"fee{n}", "2026-01", who, 1, 0, amount) for n, (amount, who) in enumerate(fees)]
    sums = totals(units, lines, payer)
    settled = {
        "id": "s",
        "to_day": "2026-01-31",
        "counterparty": "sim",
        "currency": "710",
        "direction": direction(sums.net_to_counterparty, "sim"),
        "fees": [line.__dict__ for line in lines],
        **sums.__dict__,
    }
    journal = posting.journal(settled, ACCOUNTS)
    assert sum(line.debit for line in journal) == sum(line.credit for line in journal)
    bank = sum(line.amount for line in journal if line.account == ACCOUNTS.settlement)
    assert bank == -sums.net_to_counterparty
    assert all(line.debit >= 0 and line.credit >= 0 and line.amount for line in journal)


def test_fees_are_charged_on_sales_in_time_order_with_the_months_volume_before() -> None:
    units = [unit(1, 25000, "sale"), unit(0, 10000, "sale"), unit(2, 5000, "refund"), unit(3, 5000, "sale")]
    priced = price(units, [TIERED], {("commission", "2026-01"): 0})
    assert priced.fees == {"u0": 200, "u1": 450, "u3": 50}
    assert priced.lines == [FeeLine("commission", "2026-01", "counterparty", 3, 40000, 700)]
    later = price([unit(9, 10000, "sale")], [TIERED], {("commission", "2026-01"): 95000})
    assert later.fees == {"u9": 50 + 25}  # 50.00 at 1 % (to 1000.00) + 50.00 at 0.5 %
    assert totals(units, priced.lines, "us").principal == 40000 - 5000
