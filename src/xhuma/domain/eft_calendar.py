"""When an inbound EFT transaction is due at the homing bank: pure, so the calendar rules can
be tested on their own.

A transaction whose action date is not a South African business day (a weekend or a public
holiday, as the `holidays` package keeps them, Sunday holidays moved to Monday included) is
processed on the next business day. Credits are released at the start of that day; debits
wait for the processing window the bank agreed, from `debit_release` (UTC) that day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import holidays


@cache
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("ZA", years=year))


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _public_holidays(day.year)


def business_day_on_or_after(day: date) -> date:
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def due_at(kind: str, action_date: date, debit_release: time) -> datetime:
    """The moment a credit, debit or correction may be delivered to the homing bank."""
    day = business_day_on_or_after(action_date)
    moment = debit_release if kind == "debit" else time(0, 0)
    return datetime.combine(day, moment, tzinfo=UTC)
