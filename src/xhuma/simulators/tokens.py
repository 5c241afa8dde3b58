"""20-digit prepaid tokens in the STS layout, with a CRC that verifies.

An STS token is 66 bits: class (2), subclass (4), random number (4), token identifier (24,
minutes since 1993-01-01), amount (16) and a CRC-16 over the first 50. Real tokens are then
encrypted with the meter's key; a simulator has no meter keys, so ours are not, but they have
the real shape and checksum, which is what a switch and a till ever look at."""

from __future__ import annotations

import random
from datetime import UTC, datetime

BASE_DATE = datetime(1993, 1, 1, tzinfo=UTC)
TOKEN_DIGITS = 20


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


def make_token(
    units: float, rng: random.Random, *, token_class: int = 0, subclass: int = 0, when: datetime | None = None
) -> str:
    minutes = int(((when or datetime.now(UTC)) - BASE_DATE).total_seconds() // 60) & 0xFFFFFF
    payload = (
        (token_class << 48) | (subclass << 44) | (rng.getrandbits(4) << 40) | (minutes << 16) | _units_field(units)
    )
    value = (payload << 16) | crc16_arc(payload.to_bytes(7, "big"))
    return f"{value:0{TOKEN_DIGITS}d}"


def verify_token(digits: str) -> bool:
    if len(digits) != TOKEN_DIGITS or not digits.isdigit():
        return False
    value = int(digits)
    if value >> 66:
        return False
    payload, crc = value >> 16, value & 0xFFFF
    return crc16_arc(payload.to_bytes(7, "big")) == crc
