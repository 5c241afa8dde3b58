"""The product catalogue, free of SQL and HTTP: what a client may sell, and how each of its
product codes maps to provider product codes. An import is checked whole before any of it is
applied; every problem is reported with its line (or index) and field."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import msgspec

from xhuma.domain.currencies import ISO_NUMERIC, MAX_MINOR_UNITS
from xhuma.validation import whole_number

PRODUCT_TYPES = frozenset({"gift", "gaming", "streaming", "transport", "airtime", "data", "betting", "other"})
CSV_HEADER = (
    "product_code,name,type,description,value_type,amount,min_amount,max_amount,currency,"
    "valid_from,valid_to,provider,provider_product_code,rank"
)
COLUMNS = tuple(CSV_HEADER.split(","))
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ProviderMapping:
    provider: str
    provider_product_code: str
    rank: int = 1


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    product_type: str
    fixed_value: bool
    currency: str = "710"
    description: str | None = None
    amount: int | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    mappings: tuple[ProviderMapping, ...] = field(default=())

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class CatalogueProblem:
    where: str
    """`line 3` for a CSV, `products[2]` for JSON."""
    field: str
    error: str


class CatalogueError(ValueError):
    def __init__(self, problems: list[CatalogueProblem]) -> None:
        super().__init__("; ".join(f"{p.where} {p.field}: {p.error}" for p in problems))
        self.problems = problems


def products_from_csv(text: str) -> list[Product]:
    """One row per provider mapping; rows of one product must agree on its own fields."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise CatalogueError([CatalogueProblem("line 1", "$", f"not CSV: {exc}")]) from None
    if tuple(fieldnames or ()) != COLUMNS:
        raise CatalogueError([CatalogueProblem("line 1", "header", f"expected {CSV_HEADER}")])
    problems: list[CatalogueProblem] = []
    rows: list[tuple[str, dict[str, Any]]] = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            problems.append(CatalogueProblem(f"line {line}", "row", f"expected {len(COLUMNS)} columns"))
            continue
        raw: dict[str, Any] = {k: (v.strip() or None) for k, v in row.items()}
        value_type = raw.pop("value_type")
        raw["fixed_value"] = {"fixed": True, "variable": False}.get(value_type or "", value_type)
        raw["mappings"] = [{k: raw.pop(k) for k in ("provider", "provider_product_code", "rank")}]
        rows.append((f"line {line}", raw))
    return _build(rows, problems)


def products_from_json(text: str) -> list[Product]:
    """`{"products": [...]}` (or the bare list), each product with the CSV's field names and
    `mappings: [{provider, provider_product_code, rank}]`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError([CatalogueProblem(f"line {exc.lineno}", "$", f"malformed JSON: {exc.msg}")]) from None
    except RecursionError:
        raise CatalogueError([CatalogueProblem("$", "$", "JSON is nested too deeply")]) from None
    if isinstance(data, dict):
        data = data.get("products")
    if not isinstance(data, list):
        raise CatalogueError([CatalogueProblem("$", "products", "expected a list of products")])
    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[CatalogueProblem] = []
    for index, item in enumerate(data):
        where = f"products[{index}]"
        if not isinstance(item, dict):
            problems.append(CatalogueProblem(where, "$", "expected an object"))
            continue
        raw = {k: _text(v) for k, v in item.items() if k != "mappings"}
        raw["fixed_value"] = {"fixed": True, "variable": False}.get(raw.pop("value_type", None) or "")
        mappings = item.get("mappings")
        raw["mappings"] = (
            [{k: _text(v) for k, v in m.items()} if isinstance(m, dict) else m for m in mappings]
            if isinstance(mappings, list)
            else mappings
        )
        rows.append((where, raw))
    return _build(rows, problems, merge=False)


def _text(value: Any) -> Any:
    """Numbers as the CSV would carry them, so both formats pass the same checks."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _build(
    rows: list[tuple[str, dict[str, Any]]], problems: list[CatalogueProblem], *, merge: bool = True
) -> list[Product]:
    products: dict[str, Product] = {}
    first_seen: dict[str, str] = {}
    for where, raw in rows:
        found = _product(where, raw, problems)
        if found is None:
            continue
        if found.code in products:
            if not merge:
                problems.append(CatalogueProblem(where, "product_code", f"{found.code} is listed twice"))
                continue
            earlier = products[found.code]
            if _own_fields(earlier) != _own_fields(found):
                problems.append(
                    CatalogueProblem(where, "product_code", f"{found.code} differs from {first_seen[found.code]}")
                )
                continue
            taken = {(m.provider) for m in earlier.mappings}
            for mapping in found.mappings:
                if mapping.provider in taken:
                    problems.append(CatalogueProblem(where, "provider", f"{mapping.provider} mapped twice"))
            products[found.code] = _with_mappings(earlier, earlier.mappings + found.mappings)
        else:
            products[found.code] = found
            first_seen[found.code] = where
    if not rows and not problems:
        problems.append(CatalogueProblem("$", "products", "no products"))
    if problems:
        raise CatalogueError(problems)
    return list(products.values())


def _own_fields(product: Product) -> Product:
    return replace(product, mappings=())


def _with_mappings(product: Product, mappings: tuple[ProviderMapping, ...]) -> Product:
    return replace(product, mappings=tuple(sorted(mappings, key=lambda m: (m.rank, m.provider))))


def _product(where: str, raw: dict[str, Any], problems: list[CatalogueProblem]) -> Product | None:
    before = len(problems)

    def problem(name: str, error: str) -> None:
        problems.append(CatalogueProblem(where, name, error))

    code = raw.get("product_code")
    if not isinstance(code, str) or not code:
        problem("product_code", "is required")
    elif len(code) > 40:
        problem("product_code", "at most 40 characters")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problem("name", "is required")
    elif len(name) > 100:
        problem("name", "at most 100 characters")
    product_type = raw.get("type")
    if product_type not in PRODUCT_TYPES:
        problem("type", f"one of {', '.join(sorted(PRODUCT_TYPES))}")
    description = raw.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 250):
        problem("description", "text of at most 250 characters")
    fixed = raw.get("fixed_value")
    if not isinstance(fixed, bool):
        problem("value_type", "fixed or variable")
    amounts = {k: _minor_units(raw.get(k), k, problem) for k in ("amount", "min_amount", "max_amount")}
    if fixed is True and amounts["amount"] is None:
        problem("amount", "a fixed-value product needs its amount")
    if fixed is False:
        low, high = amounts["min_amount"], amounts["max_amount"]
        if low is None or high is None:
            problem("min_amount" if low is None else "max_amount", "a variable-value product needs its range")
        elif low > high:
            problem("max_amount", "must not be below min_amount")
    currency = raw.get("currency") or "710"
    if currency not in ISO_NUMERIC:
        problem("currency", "an ISO 4217 numeric code such as 710")
    valid_from = _day(raw.get("valid_from"), "valid_from", problem)
    valid_to = _day(raw.get("valid_to"), "valid_to", problem)
    if valid_from and valid_to and valid_to < valid_from:
        problem("valid_to", "must not be before valid_from")
    mappings = []
    raw_mappings = raw.get("mappings")
    if not isinstance(raw_mappings, list) or not raw_mappings:
        problem("mappings", "at least one provider mapping is required")
        raw_mappings = []
    for index, mapping in enumerate(raw_mappings):
        prefix = "" if len(raw_mappings) == 1 and "line" in where else f"mappings[{index}]."
        if not isinstance(mapping, dict):
            problem(f"mappings[{index}]", "expected an object")
            continue
        provider, provider_code, rank = (mapping.get(k) for k in ("provider", "provider_product_code", "rank"))
        if not isinstance(provider, str) or not provider or len(provider) > 40:
            problem(prefix + "provider", "is required, at most 40 characters")
        if not isinstance(provider_code, str) or not provider_code or len(provider_code) > 40:
            problem(prefix + "provider_product_code", "is required, at most 40 characters")
        rank_value = 1 if rank is None else whole_number(rank if isinstance(rank, str) else None, low=1, high=10_000)
        if rank_value is None:
            problem(prefix + "rank", "a whole number from 1 to 10000")
        if len(problems) == before and rank_value is not None:
            mappings.append(ProviderMapping(str(provider), str(provider_code), rank_value))
    if len(problems) != before:
        return None
    return _with_mappings(
        Product(
            str(code),
            str(name),
            str(product_type),
            bool(fixed),
            str(currency),
            description,
            amounts["amount"],
            amounts["min_amount"],
            amounts["max_amount"],
            valid_from,
            valid_to,
        ),
        tuple(mappings),
    )


def _minor_units(value: Any, name: str, problem: Any) -> int | None:
    if value is None:
        return None
    units = whole_number(value, high=MAX_MINOR_UNITS) if isinstance(value, str) else None
    if units is not None:
        return units
    problem(name, "a whole number of minor units (cents)")
    return None


def _day(value: Any, name: str, problem: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problem(name, "a date as YYYY-MM-DD")
        return None


def to_csv(products: list[Product]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in products:
        for m in p.mappings:
            writer.writerow(
                [
                    p.code,
                    p.name,
                    p.product_type,
                    p.description or "",
                    "fixed" if p.fixed_value else "variable",
                    *("" if v is None else v for v in (p.amount, p.min_amount, p.max_amount)),
                    p.currency,
                    p.valid_from or "",
                    p.valid_to or "",
                    m.provider,
                    m.provider_product_code,
                    m.rank,
                ]
            )
    return out.getvalue()


def to_wire(product: Product) -> dict[str, Any]:
    """A product as SUV's products look-up carries it (amounts in minor units, numeric currency)."""
    out: dict[str, Any] = {"productId": product.code, "name": product.name, "isFixedValue": product.fixed_value}
    if product.description:
        out["description"] = product.description
    for key, value in (
        ("amount", product.amount),
        ("minAmount", product.min_amount),
        ("maxAmount", product.max_amount),
    ):
        if value is not None:
            out[key] = {"amount": value, "currency": product.currency}
    return out


def encode_products(products: list[Product]) -> bytes:
    return _encode({"products": [to_wire(p) for p in products]})


def encode_changes(version: int, changes: list[dict[str, Any]]) -> bytes:
    return _encode({"version": version, "changes": changes})
