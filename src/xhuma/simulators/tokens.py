"""20-digit prepaid tokens in the STS layout, with a CRC that verifies.

An STS token is 66 bits: class (2), subclass (4), random number (4), token identifier (24,
minutes since the base date), amount (16) and a CRC-16 over the first 50. The 24 bits counted
from 1993-01-01 ran out in November 2024 (the STS TID rollover); meters re-keyed for it count
from 2014-01-01, which is the base date here. Real tokens are then
encrypted with the meter's key; a simulator has no meter keys, so ours are not, but they have
the real shape and checksum, which is what a switch and a till ever look at."""

from __future__ import annotations

import random
from datetime import UTC, datetime

BASE_DATE = datetime(2014, 1, 1, tzinfo=UTC)
TOKEN_DIGITS = 20
TID_MASK = 0xFFFFFF


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005, reflected), the one STS uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _units_field(units: float) -> int:
    """Tenths of a unit in 14 bits of mantissa with a 2-bit decimal exponent, as STS packs it."""
    value = max(0, round(units * 10))
    exponent = 0
    while value > 0x3FFF and exponent < 3:
        value //= 10
        exponent += 1
    return (exponent << 14) | min(value, 0x3FFF)


def minutes_since_base(when: datetime) -> int:
    """The STS token identifier (TID) of a moment: whole minutes since the base date, in 24 bits."""
    return int((when - BASE_DATE).total_seconds() // 60) & TID_MASK


def make_token(
    units: float, rng: random.Random, *, token_class: int = 0, subclass: int = 0, tid: int | None = None
) -> str:
    """A token with identifier `tid` (this minute's when not given)."""
    minutes = (minutes_since_base(datetime.now(UTC)) if tid is None else tid) & TID_MASK
    payload = (
        (token_class << 48) | (subclass << 44) | (rng.getrandbits(4) << 40) | (minutes << 16) | _units_field(units)
    )
    value = (payload << 16) | crc16_arc(payload.to_bytes(7, "big"))
    return f"{value:0{TOKEN_DIGITS}d}"


def token_identifier(digits: str) -> int:
    """The TID a token carries (what a meter compares with the ones it has already accepted)."""
    return (int(digits) >> 32) & TID_MASK


class MeterTokenIssuer:
    """Issues tokens so that each meter sees strictly increasing TIDs, as real vending does.

    A meter refuses a token whose TID it has already accepted, so two purchases for one meter in
    one minute must not share a TID: the second is dated a minute after the first (and so on),
    the clock catching up with them later. Runs on the simulator's event loop: no locking."""

    def __init__(self) -> None:
        self._last_tid: dict[str, int] = {}

    def issue(self, meter_id: str, units: float, rng: random.Random, *, subclass: int = 0) -> str:
        now = minutes_since_base(datetime.now(UTC))
        tid = max(now, self._last_tid.get(meter_id, -1) + 1)
        self._last_tid[meter_id] = tid
        return make_token(units, rng, subclass=subclass, tid=tid)


def verify_token(digits: str) -> bool:
    if len(digits) != TOKEN_DIGITS or not digits.isdigit():
        return False
    value = int(digits)
    if value >> 66:
        return False
    payload, crc = value >> 16, value & 0xFFFF
    return crc16_arc(payload.to_bytes(7, "big")) == crc
