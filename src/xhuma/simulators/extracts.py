"""A provider's own daily extract of what it sold, as a counterparty sends it for reconciliation.

Written from the simulator's ledger (never from the switch's journal: the two sides must be kept
apart for reconciliation to prove anything), in the layout a `[[finance.processes]]` file spec
reads: `reference` (the id of the request the switch sent), `amount_cents`, `time` (UTC),
`type`, `meter`. Discrepancies are injected on request, chosen by a seeded random generator:
records left out, records added, amounts changed, times moved (e.g. across midnight)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

HEADER = ("reference", "amount_cents", "time", "type", "meter")


@dataclass(frozen=True)
class Line:
    reference: str
    amount: int
    at_us: int
    type: str = "purchase"
    meter: str = ""


@dataclass(frozen=True)
class Discrepancies:
    missing: int = 0
    extra: int = 0
    amount_diff: int = 0
    diff_cents: int = 100
    time_shift: int = 0
    shift_seconds: int = 3600
    seed: int = 0


@dataclass
class Extract:
    name: str
    text: str
    injected: dict[str, list[str]] = field(default_factory=dict)
    """Which references got which discrepancy."""


def extract(provider: str, sales: list[Line], day: date, zone: ZoneInfo, wanted: Discrepancies) -> Extract:
    """The day's sales (in `zone`) with the discrepancies asked for, as CSV."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    low, high = (int(moment.timestamp()) * 1_000_000 for moment in (start, start + timedelta(days=1)))
    lines = sorted((s for s in sales if low <= s.at_us < high), key=lambda s: (s.at_us, s.reference))
    rng = random.Random(wanted.seed)
    chosen = rng.sample(range(len(lines)), min(len(lines), wanted.missing + wanted.amount_diff + wanted.time_shift))
    missing = set(chosen[: wanted.missing])
    changed = set(chosen[wanted.missing : wanted.missing + wanted.amount_diff])
    shifted = set(chosen[wanted.missing + wanted.amount_diff :])
    injected: dict[str, list[str]] = {"missing": [], "amount_diff": [], "time_shift": [], "extra": []}
    out: list[Line] = []
    for index, line in enumerate(lines):
        if index in missing:
            injected["missing"].append(line.reference)
            continue
        if index in changed:
            injected["amount_diff"].append(line.reference)
            line = Line(line.reference, line.amount + wanted.diff_cents, line.at_us, line.type, line.meter)
        if index in shifted:
            injected["time_shift"].append(line.reference)
            line = Line(
                line.reference, line.amount, line.at_us + wanted.shift_seconds * 1_000_000, line.type, line.meter
            )
        out.append(line)
    for _ in range(wanted.extra):
        reference = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        injected["extra"].append(reference)
        out.append(Line(reference, rng.randrange(100, 100_000), rng.randrange(low, high), "purchase", ""))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for line in sorted(out, key=lambda s: (s.at_us, s.reference)):
        moment = datetime.fromtimestamp(line.at_us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow((line.reference, line.amount, moment, line.type, line.meter))
    name = f"{provider.upper()}_XHUMA_EXTRACT_PPU_SWITCH_{day:%Y%m%d}_{low // 1_000_000}.csv"
    return Extract(name, buffer.getvalue(), injected)
