"""The voucher catalogue: imports checked whole (pure), and operated through the admin API."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Switch
from tests.support import xhuma
from xhuma.vouchers.catalogue import (
    CSV_HEADER,
    CatalogueError,
    Product,
    ProviderMapping,
    products_from_csv,
    products_from_json,
    to_csv,
)

codes = st.text(string.ascii_uppercase + string.digits + "-", min_size=1, max_size=40)
names = st.text(string.ascii_letters + " ", min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def products(draw: st.DrawFn) -> Product:
    fixed = draw(st.booleans())
    low = draw(st.integers(0, 10**6))
    high = draw(st.integers(low, 10**7))
    providers = draw(st.lists(st.sampled_from(["vouchr", "stellr", "other"]), min_size=1, max_size=3, unique=True))
    return Product(
        draw(codes),
        draw(names),
        draw(st.sampled_from(["gift", "gaming", "streaming"])),
        fixed,
        amount=low if fixed else None,
        min_amount=None if fixed else low,
        max_amount=None if fixed else high,
        mappings=tuple(ProviderMapping(p, f"{p[:3].upper()}-{i}", i + 1) for i, p in enumerate(providers)),
    )


@given(st.lists(products(), min_size=1, max_size=5, unique_by=lambda p: p.code))
def test_csv_round_trip(listed: list[Product]) -> None:
    assert products_from_csv(to_csv(listed)) == listed


@settings(max_examples=60)
@given(st.lists(products(), min_size=1, max_size=5, unique_by=lambda p: p.code), st.data())
def test_one_bad_cell_refuses_the_whole_file_naming_line_and_field(listed: list[Product], data: st.DataObject) -> None:
    lines = to_csv(listed).splitlines()
    line = data.draw(st.integers(1, len(lines) - 1))
    column, bad = data.draw(
        st.sampled_from([(0, ""), (1, ""), (2, "jewellery"), (4, "sometimes"), (11, ""), (13, "0"), (13, "x")])
    )
    cells = lines[line].split(",")
    cells[column] = bad
    lines[line] = ",".join(cells)
    with pytest.raises(CatalogueError) as refused:
        products_from_csv("\n".join(lines) + "\n")
    field = CSV_HEADER.split(",")[column]
    assert any(p.where == f"line {line + 1}" and p.field in (field, "value_type") for p in refused.value.problems)


def test_json_import_names_index_and_field() -> None:
    with pytest.raises(CatalogueError) as refused:
        products_from_json(
            '{"products": [{"product_code": "A", "name": "a", "type": "gift", "value_type": "variable",'
            ' "min_amount": 500, "max_amount": 100, "mappings": [{"provider": "p"}]}]}'
        )
    found = {(p.where, p.field) for p in refused.value.problems}
    assert ("products[0]", "max_amount") in found and ("products[0]", "mappings[0].provider_product_code") in found


def test_rows_of_one_product_must_agree() -> None:
    text = CSV_HEADER + "\nA,Gift,gift,,fixed,100,,,710,,,p1,X,1\nA,Other name,gift,,fixed,100,,,710,,,p2,Y,2\n"
    with pytest.raises(CatalogueError, match="line 3 product_code"):
        products_from_csv(text)


def test_admin_api_imports_checked_whole_and_logs_changes(switch: Switch) -> None:
    admin = ("cat-ops", "cat-ops-pw")
    switch.cli(
        "clients", "add", "--username", admin[0], "--password", admin[1], "--client-id", "ops", "--role", "admin"
    )
    http = httpx.Client(base_url=switch.url + "/admin/catalogue/shop-x", auth=admin, timeout=10)
    good = (
        CSV_HEADER
        + "\nG1,Gift,gift,,fixed,1000,,,710,,,vouchr,V-G1,1"
        + "\nS1,Stream,streaming,,variable,,100,900,710,,,vouchr,V-S1,1\n"
    )
    assert http.post("/products.csv", content=good).json()["added"] == 2
    bad = good.replace("G1,Gift", "G2,Gift2") + "B1,Broken,gift,,fixed,,,,710,,,vouchr,V-B1,1\n"
    refused = http.post("/products.csv", content=bad)
    assert refused.status_code == 400
    assert {"where": "line 4", "field": "amount"} in [
        {k: e[k] for k in ("where", "field")} for e in refused.json()["errors"]
    ]
    assert sorted(p["code"] for p in http.get("/products").json()) == ["G1", "S1"]
    replaced = http.put(
        "/products?replace=true",
        json={
            "products": [
                {
                    "product_code": "G1",
                    "name": "Gift",
                    "type": "gift",
                    "value_type": "fixed",
                    "amount": 2000,
                    "mappings": [{"provider": "vouchr", "provider_product_code": "V-G1", "rank": 1}],
                }
            ]
        },
    )
    assert replaced.json() == {"added": 0, "changed": 1, "removed": 1, "version": 4}
    log = http.get("/changes", params={"since": 2}).json()
    assert [(c["productCode"], c["action"], c["actor"]) for c in log["changes"]] == [
        ("G1", "changed", admin[0]),
        ("S1", "removed", admin[0]),
    ]
    assert http.delete("/products/NOPE").status_code == 404
    listed = xhuma("catalogue", "list", "--client", "shop-x", "--csv", env=switch.env).stdout
    assert products_from_csv(listed)[0].amount == 2000
