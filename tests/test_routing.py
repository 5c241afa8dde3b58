"""Routing over the simulated fleet of ten providers: broadcast, contract table, preferences,
fallback and capabilities, all over real HTTP between real processes."""

from __future__ import annotations

import json
import random
from collections import Counter

import httpx

from tests.fleet import CPT_E, CPT_E_NAME, Fleet, wait_for
from tests.support import base_message, xhuma
from xhuma.domain.routing import order_providers


def test_broadcast_fills_the_contract_table_and_re_asks_non_responders(fleet: Fleet) -> None:
    fleet.provider("ontec", mode="hang")
    _, answer = fleet.retailer.lookup(CPT_E)
    assert answer.status_code == 201, answer.text
    assert answer.json()["utility"]["name"] == CPT_E_NAME
    # The retailer was answered by the first supporting provider; slower answers land after.
    table = wait_for(lambda: (t := fleet.table(CPT_E)) and list(t.values()).count("unconfirmed") == 1 and t)
    assert sorted(p for p, s in table.items() if s == "supported") == ["easypay", "ipay", "switchone"]
    assert table["ontec"] == "unconfirmed"  # hung: never answered within the broadcast timeout
    assert list(table.values()).count("not_supported") == 6

    fleet.provider("ontec", mode="normal")
    _, answer = fleet.retailer.lookup(CPT_E)
    assert answer.status_code == 201
    table = wait_for(lambda: (t := fleet.table(CPT_E))["ontec"] == "supported" and t)
    assert sorted(p for p, s in table.items() if s == "supported") == ["easypay", "ipay", "ontec", "switchone"]


def test_unknown_meter_everywhere(fleet: Fleet) -> None:
    _, answer = fleet.retailer.lookup("99912345678")
    assert answer.status_code == 400 and answer.json()["errorType"] == "UNKNOWN_METER_ID"


def test_preference_wins_and_falls_back_when_the_preferred_is_down(fleet: Fleet) -> None:
    assert fleet.retailer.lookup(CPT_E)[1].status_code == 201
    wait_for(lambda: sum(s == "supported" for s in fleet.table(CPT_E).values()) == 4)
    xhuma(
        "routing",
        "prefer",
        CPT_E_NAME,
        "--providers",
        "easypay,switchone",
        "--exclude",
        "ipay",
        "--actor",
        "ops@test",
        env=fleet.env,
    )
    for _ in range(5):
        purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
        assert answer.status_code == 201, answer.text
        assert fleet.tx(purchase["id"])["provider"] == "easypay"

    fleet.provider("easypay", mode="unavailable")  # 503: refused, nothing bought
    purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
    assert answer.status_code == 201, answer.text
    tx = fleet.tx(purchase["id"])
    assert tx["provider"] == "switchone"
    ledger = httpx.get(f"{fleet.simulator.url}/easypay/_sim/ledger").json()
    assert tx["id"] not in {p["id"] for p in ledger["purchases"]}
    audit = xhuma("routing", "audit", env=fleet.env).stdout
    assert "ops@test" in audit and "easypay" in audit

    bad = xhuma("routing", "prefer", CPT_E_NAME, "--providers", "nosuch", env=fleet.env, check=False)
    assert bad.returncode != 0 and "nosuch" in bad.stdout + bad.stderr


def test_operations_go_to_a_provider_that_can_do_them(fleet: Fleet) -> None:
    assert fleet.retailer.lookup(CPT_E)[1].status_code == 201
    wait_for(lambda: sum(s == "supported" for s in fleet.table(CPT_E).values()) == 4)
    trial = base_message("r1", meter={"meterId": CPT_E}, purchaseAmount={"amount": 2000, "currency": "710"})
    answer = fleet.retailer.post(f"/tokenPurchases/{trial['id']}/trial", trial)
    assert answer.status_code == 200, answer.text
    assert fleet.tx(trial["id"])["provider"] == "ontec"  # the only one here that prices trials

    eth = "20112345678"  # eThekwini: ipay, bluelabel, switchone, sandulela; none takes fault reports
    assert fleet.retailer.lookup(eth)[1].status_code == 201
    wait_for(lambda: sum(s == "supported" for s in fleet.table(eth).values()) == 4)
    fault = base_message("r1", meter={"meterId": eth}, contactNumber="0820000000", faultType="MeterDead")
    answer = fleet.retailer.post(f"/faultReports/{fault['id']}", fault)
    assert answer.status_code == 501 and answer.json()["errorType"] == "FUNCTION_NOT_SUPPORTED"


def test_a_purchase_of_an_unseen_meter_discovers_it_first(fleet: Fleet) -> None:
    purchase, answer = fleet.retailer.purchase("40112345678", 3000)  # Johannesburg electricity
    assert answer.status_code == 201, answer.text
    assert fleet.tx(purchase["id"])["provider"] in {"ipay", "bluelabel", "kazang", "racellular"}
    assert "supported" in fleet.table("40112345678").values()


def test_weights_share_the_traffic_within_tolerance() -> None:
    rng = random.Random(42)
    weights = {"a": 50, "b": 20, "c": 20, "d": 10}
    firsts = Counter(
        order_providers(list(weights), preferences={}, excluded=(), weights=weights, available=list(weights), rng=rng)[
            0
        ]
        for _ in range(10_000)
    )
    for provider, weight in weights.items():
        expected = 10_000 * weight / 100
        # Four standard deviations of a binomial count: fails by chance about once in 15,000 runs.
        assert abs(firsts[provider] - expected) < 4 * (expected * (1 - weight / 100)) ** 0.5


def test_order_rules() -> None:
    rng = random.Random(1)
    order = order_providers(
        ["a", "b", "c", "d"], preferences={"c": 1, "b": 2}, excluded=["d"], weights={}, available=["a", "b"], rng=rng
    )
    assert order == ["b", "a", "c"]  # preferred and up, then the rest up, then the down ones by the same rules


def _unseen_meters(prefix: str, count: int) -> list[str]:
    """Meters of one municipality that nobody has looked up yet (each test has its own database)."""
    return [f"{prefix}{n:08d}" for n in random.Random(prefix).sample(range(10**8), count)]


def test_first_purchases_of_unseen_meters_follow_preferences_and_exclusions(fleet: Fleet) -> None:
    xhuma("routing", "prefer", CPT_E_NAME, "--providers", "ontec", "--exclude", "ipay", env=fleet.env)
    meters = _unseen_meters("101", 10)
    for meter in meters:
        purchase, answer = fleet.retailer.purchase(meter, 2000)
        assert answer.status_code == 201, answer.text
        assert fleet.tx(purchase["id"])["provider"] == "ontec"
    sold = {p["meterId"] for p in fleet.ledger("ipay")}
    assert not sold & set(meters)  # excluded: asked about the meter, never sold to


def test_first_operations_on_unseen_meters_go_to_a_provider_that_can_do_them(fleet: Fleet) -> None:
    """ontec is the only Cape Town provider taking fault reports and pricing trials, and not
    the fastest to answer a lookup."""
    for meter in _unseen_meters("101", 5):
        fault = base_message("r1", meter={"meterId": meter}, contactNumber="0820000000", faultType="MeterDead")
        answer = fleet.retailer.post(f"/faultReports/{fault['id']}", fault)
        assert answer.status_code == 201, answer.text
        assert fleet.tx(fault["id"])["provider"] == "ontec"
    for meter in [f"1019{n:07d}" for n in range(5)]:
        trial = base_message("r1", meter={"meterId": meter}, purchaseAmount={"amount": 2000, "currency": "710"})
        answer = fleet.retailer.post(f"/tokenPurchases/{trial['id']}/trial", trial)
        assert answer.status_code == 200, answer.text
        assert fleet.tx(trial["id"])["provider"] == "ontec"


def test_discovery_lookups_are_journalled_under_our_own_institution(fleet: Fleet) -> None:
    (meter,) = _unseen_meters("401", 1)
    purchase, answer = fleet.retailer.purchase(meter, 3000)
    assert answer.status_code == 201, answer.text
    listed = xhuma("tx", "list", "--meter", meter, "--json", env=fleet.env).stdout.splitlines()
    lookups = [row for row in map(json.loads, listed) if row["kind"] == "meter_lookup"]
    assert lookups and {row["client_id"] for row in lookups} == {"xhuma"}
