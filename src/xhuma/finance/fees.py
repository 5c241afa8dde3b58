"""Fees and commissions (`[[finance.fees]]`) and each counterparty's ledger accounts
(`[finance.accounts.NAME]`), and the arithmetic that prices one settled match.

Pure: configuration read once on the main thread with the settings (`check` is called by
`processes.check`), and functions of integers; no I/O. Money is integer cents; a percentage is
an exact `Decimal` (never float). The rounding rule, stated once: a rule's percentage part of one
match's fee is computed exactly and rounded to whole cents ROUND_HALF_EVEN; then the fixed part
is added and the sum is held within `min_cents`..`max_cents`. So every fee is a whole number of
cents, never negative, and the sum of a period's fees is the sum of its matches' fees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(min_length=1, max_length=80)]
Cents = Annotated[int, Meta(ge=0)]
EXACT = Context(prec=60)
"""Wide enough that a product of cents (up to 2^63) and a percentage is exact."""


class Tier(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The rate on the part of the month's volume from `from_cents` up to the next tier's."""

    from_cents: Cents
    percent: str


class FeeRule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A fee or commission on each settled sale of `counterparty` that the selectors pick."""

    name: Name
    counterparty: Name
    payer: Literal["counterparty", "us"] = "counterparty"
    """Who pays it: `counterparty` (a commission or fee they owe us) or `us`."""
    service: Literal["ppu", "suv", "eft"] | None = None
    provider: Name | None = None
    product: Name | None = None
    client: Name | None = None
    fixed_cents: Cents = 0
    """Per match (one transaction, or one grouped match as a split payment)."""
    percent: str | None = None
    """Of the match's amount, e.g. "1.5" (1.5 %)."""
    tiers: list[Tier] = []
    """Instead of `percent`: marginal rates by the month's volume of this rule's sales."""
    min_cents: Cents | None = None
    max_cents: Cents | None = None


class Accounts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The general-ledger accounts a counterparty's settlements are posted to."""

    principal: Annotated[str, Meta(min_length=1, max_length=40)]
    fees: Annotated[str, Meta(min_length=1, max_length=40)]
    settlement: Annotated[str, Meta(min_length=1, max_length=40)]
    principal_payer: Literal["us", "counterparty"] = "us"
    """Who owes the principal: `us` (a provider whose value we sold) or `counterparty` (a client)."""


class FeeError(ValueError):
    """`key: reason`, the key spelt from `finance`, e.g. `finance.fees[1].tiers[0].percent`."""


def rate(text: str, where: str) -> Decimal:
    """A percentage from 0 to 100, exactly; FeeError naming `where` otherwise."""
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 100:
        raise FeeError(f'{where}: {text!r} is not a percentage from 0 to 100, e.g. "1.5"')
    return value


def check(fees: Sequence[FeeRule], accounts: Mapping[str, Accounts], counterparties: set[str]) -> None:
    """What the structs cannot say, in file order: the first problem is raised."""
    known = ", ".join(sorted(counterparties)) or "none"
    seen: set[str] = set()
    for index, fee in enumerate(fees):
        where = f"finance.fees[{index}]"
        if fee.name in seen:
            raise FeeError(f"{where}.name: a second fee named {fee.name!r}")
        seen.add(fee.name)
        if fee.counterparty not in counterparties:
            raise FeeError(f"{where}.counterparty: no process reconciles {fee.counterparty!r}; known: {known}")
        if fee.percent is not None and fee.tiers:
            raise FeeError(f"{where}.tiers: a fee has a percent or tiers, not both")
        if fee.percent is not None:
            rate(fee.percent, f"{where}.percent")
        for n, tier in enumerate(fee.tiers):
            rate(tier.percent, f"{where}.tiers[{n}].percent")
            if n == 0 and tier.from_cents != 0:
                raise FeeError(f"{where}.tiers[0].from_cents: the first tier starts at 0")
            if n and tier.from_cents <= fee.tiers[n - 1].from_cents:
                raise FeeError(f"{where}.tiers[{n}].from_cents: tiers go up: must exceed the tier before")
        if fee.min_cents is not None and fee.max_cents is not None and fee.min_cents > fee.max_cents:
            raise FeeError(f"{where}.max_cents: below min_cents ({fee.min_cents})")
        if fee.fixed_cents == 0 and fee.percent is None and not fee.tiers and not fee.min_cents:
            raise FeeError(f"{where}: charges nothing: give fixed_cents, percent, tiers or min_cents")
    for name in accounts:
        if name not in counterparties:
            raise FeeError(f"finance.accounts.{name}: no process reconciles {name!r}; known: {known}")


def selects(fee: FeeRule, service: str, provider: str | None, product: str | None, client: str | None) -> bool:
    """Whether the rule applies to a match of this service, provider, product and client."""
    wanted = ((fee.service, service), (fee.provider, provider), (fee.product, product), (fee.client, client))
    return all(rule is None or rule == value for rule, value in wanted)


def percentage_part(fee: FeeRule, amount: int, volume_before: int) -> Decimal:
    """The exact percentage part of the fee on `amount` cents when this rule's sales in the month
    so far come to `volume_before` cents: a flat `percent`, or each tier's rate on the part of
    the amount that falls in that tier (so splitting a month differently never changes it)."""
    if fee.percent is not None:
        return EXACT.divide(EXACT.multiply(Decimal(amount), rate(fee.percent, "percent")), Decimal(100))
    total = Decimal(0)
    start, end = volume_before, volume_before + amount
    for n, tier in enumerate(fee.tiers):
        upper = fee.tiers[n + 1].from_cents if n + 1 < len(fee.tiers) else None
        low = max(start, tier.from_cents)
        high = end if upper is None else min(end, upper)
        if high > low:
            share = EXACT.multiply(Decimal(high - low), rate(tier.percent, "percent"))
            total = EXACT.add(total, EXACT.divide(share, Decimal(100)))
    return total


def fee_of(fee: FeeRule, amount: int, volume_before: int = 0) -> int:
    """One match's fee in whole cents, by the rounding rule in this module's docstring."""
    part = percentage_part(fee, amount, volume_before).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    cents = fee.fixed_cents + int(part)
    if fee.min_cents is not None:
        cents = max(cents, fee.min_cents)
    if fee.max_cents is not None:
        cents = min(cents, fee.max_cents)
    return cents
