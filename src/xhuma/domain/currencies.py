"""ISO 4217 currencies by their numeric code, as PPU and SUV amounts carry them, and the bound on
an amount.

From pycountry's copy of the ISO data, less the codes that are not money a retailer takes:
precious metals, fund units, "no currency" (999) and the testing code (963)."""

from __future__ import annotations

from decimal import Decimal

import pycountry

NOT_MONEY = frozenset({"XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA", "XBB", "XBC", "XBD"})

ISO_NUMERIC: frozenset[str] = frozenset(
    c.numeric for c in pycountry.currencies if getattr(c, "numeric", None) and c.alpha_3 not in NOT_MONEY
)

ISO_NUMERIC_PATTERN = "^(?:" + "|".join(sorted(ISO_NUMERIC)) + ")$"
"""A regex for wire structs: msgspec checks it while decoding, at no cost to a valid message."""

MAX_MINOR_UNITS = 2**53 - 1
"""The largest amount accepted, in minor units: the largest integer every JSON parser keeps exactly."""


def money(cents: int | None, *, signed: bool = False) -> str:
    """Integer cents as a decimal amount with two places (exactly: no float on the way); `signed`
    writes the sign of a positive amount too (a difference). None is the empty string."""
    if cents is None:
        return ""
    return f"{Decimal(cents).scaleb(-2):{'+' if signed else ''}.2f}"
