"""Operator changes to routing, checked whole before any of them is applied. The CLI and the
admin API share these checks, so both refuse the same things in the same words."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from xhuma.validation import FieldError, whole_number

METER_ID = re.compile(r"^[a-zA-Z0-9]{1,20}$")
CSV_COLUMNS = ("municipality", "provider", "rank")
EXCLUDED = "excluded"
MAX_MUNICIPALITY = 80


class RoutingChangeError(ValueError):
    """A change that was refused; `errors` names each bad field (for a CSV: line and column)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.error}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class PreferenceChange:
    """A municipality's whole preference list: `ranked` best first; none of `excluded` is used."""

    municipality: str
    ranked: tuple[str, ...]
    excluded: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.municipality}: prefer {list(self.ranked) or '-'}, exclude {list(self.excluded) or '-'}"


def preference_change(
    municipality: str, ranked: list[str], excluded: list[str], known: Collection[str]
) -> PreferenceChange:
    errors = _municipality_errors("municipality", municipality)
    for name, providers in (("providers", ranked), ("excluded", excluded)):
        unknown = sorted(set(providers) - set(known))
        if unknown:
            errors.append(FieldError(name, f"unknown providers; configured: {sorted(known)}", unknown))
        repeated = sorted({p for p in providers if providers.count(p) > 1})
        if repeated:
            errors.append(FieldError(name, "a provider may appear only once", repeated))
    both = sorted(set(ranked) & set(excluded))
    if both:
        errors.append(FieldError("excluded", "a provider cannot be both preferred and excluded", both))
    if errors:
        raise RoutingChangeError(errors)
    return PreferenceChange(municipality, tuple(ranked), tuple(excluded))


def preferences_from_csv(text: str, known: Collection[str]) -> list[PreferenceChange]:
    """Parse a preferences file: header `municipality,provider,rank`, one row per provider, rank
    a whole number from 1 (first choice) or `excluded`. Each municipality named in the file gets
    exactly the preferences the file gives it; the others are left as they are."""
    try:
        rows_read = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise RoutingChangeError([FieldError("body", f"not CSV: {exc}")]) from None
    reader = iter(rows_read)
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != CSV_COLUMNS:
        raise RoutingChangeError([FieldError("line 1", f"header must be {','.join(CSV_COLUMNS)}", header)])
    errors: list[FieldError] = []
    rows: dict[str, list[tuple[int | None, str]]] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            errors.append(FieldError(f"line {line}", f"expected {len(CSV_COLUMNS)} columns, got {len(row)}", row))
            continue
        municipality, provider, rank_text = (cell.strip() for cell in row)
        errors += _municipality_errors(f"line {line}: municipality", municipality)
        if provider not in known:
            errors.append(FieldError(f"line {line}: provider", f"unknown; configured: {sorted(known)}", provider))
        rank: int | None = None
        if rank_text.lower() != EXCLUDED:
            rank = whole_number(rank_text, low=1)
            if rank is None:
                errors.append(FieldError(f"line {line}: rank", f"a whole number from 1, or {EXCLUDED}", rank_text))
                continue
        entries = rows.setdefault(municipality, [])
        if any(p == provider for _, p in entries):
            errors.append(FieldError(f"line {line}: provider", f"listed twice for {municipality}", provider))
        if rank is not None and any(r == rank for r, _ in entries):
            errors.append(FieldError(f"line {line}: rank", f"rank {rank} used twice for {municipality}", rank_text))
        entries.append((rank, provider))
    if not rows and not errors:
        errors.append(FieldError("line 2", "the file has no rows"))
    if errors:
        raise RoutingChangeError(errors)
    return [
        PreferenceChange(
            municipality,
            tuple(p for r, p in sorted((r, p) for r, p in entries if r is not None)),
            tuple(p for r, p in entries if r is None),
        )
        for municipality, entries in rows.items()
    ]


def weight_changes(raw: Mapping[str, Any], known: Collection[str]) -> dict[str, float | None]:
    """Weights by provider; None clears the operator's weight (the configured one applies)."""
    errors: list[FieldError] = []
    changes: dict[str, float | None] = {}
    if not raw:
        errors.append(FieldError("weights", "name at least one provider"))
    for provider, value in raw.items():
        if provider not in known:
            errors.append(FieldError(f"weights.{provider}", f"unknown provider; configured: {sorted(known)}"))
        elif value is None:
            changes[provider] = None
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            errors.append(FieldError(f"weights.{provider}", "a number of 0 or more (0: only as a fallback)", value))
        else:
            changes[provider] = float(value)
    if errors:
        raise RoutingChangeError(errors)
    return changes


def check_meter_id(meter_id: str) -> str:
    if not METER_ID.match(meter_id):
        raise RoutingChangeError([FieldError("meterId", "1 to 20 letters or digits", meter_id)])
    return meter_id


def _municipality_errors(field: str, municipality: str) -> list[FieldError]:
    if not municipality.strip() or len(municipality) > MAX_MUNICIPALITY:
        return [FieldError(field, f"1 to {MAX_MUNICIPALITY} characters", municipality)]
    return []
