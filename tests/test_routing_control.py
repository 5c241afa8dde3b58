"""Operating routing: the admin API and CLI, refresh of the contract table, the active health
check, retries that stay with their provider, and weights over real traffic. Real processes,
real HTTP, both database backends."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

from tests.fleet import CPT_E, CPT_E_NAME, Fleet, learned, running_fleet, wait_for
from tests.support import base_message, xhuma


def test_preferences_weights_and_audit_over_the_admin_api(fleet: Fleet) -> None:
    learned(fleet, CPT_E, 4)
    assert fleet.admin("GET", "/preferences", auth=("till", "pw")).status_code == 403  # valid, but not admin

    answer = fleet.admin("PUT", f"/preferences/{CPT_E_NAME}", json={"providers": ["switchone", "easypay"]})
    assert answer.status_code == 200, answer.text
    purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
    assert answer.status_code == 201 and fleet.tx(purchase["id"])["provider"] == "switchone"

    # A bad change names the field and changes nothing.
    answer = fleet.admin("PUT", f"/preferences/{CPT_E_NAME}", json={"providers": ["ontec"], "excluded": ["ontec"]})
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "excluded"
    answer = fleet.admin("PUT", f"/preferences/{CPT_E_NAME}", json={"providers": ["nosuch"]})
    assert answer.status_code == 400 and answer.json()["errors"][0]["invalidValue"] == ["nosuch"]
    answer = fleet.admin("PUT", f"/preferences/{CPT_E_NAME}", content=b"{not json")
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "body"
    ranked = [p["provider"] for p in fleet.admin("GET", "/preferences").json()]
    assert ranked == ["switchone", "easypay"]

    answer = fleet.admin("PUT", "/weights", json={"ipay": 5, "ontec": -1})
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "weights.ontec"
    answer = fleet.admin("PUT", "/weights", json={"ipay": 5, "ontec": 0})
    assert answer.status_code == 200, answer.text
    weights = answer.json()
    assert weights["ipay"] == {"weight": 5.0, "setBy": "operator"} and weights["kazang"]["setBy"] == "config"
    answer = fleet.admin("PUT", "/weights", json={"ipay": None})
    assert answer.json()["ipay"] == {"weight": 1.0, "setBy": "config"}

    assert fleet.admin("DELETE", f"/preferences/{CPT_E_NAME}").status_code == 200
    assert fleet.admin("GET", "/preferences").json() == []

    audit = fleet.admin("GET", "/audit").json()
    assert [(a["actor"], a["action"]) for a in reversed(audit)] == [
        ("ops", "set_preferences"),
        ("ops", "set_weights"),
        ("ops", "set_weights"),
        ("ops", "clear_preferences"),
    ]


def test_a_preferences_csv_is_checked_whole_before_any_of_it_applies(fleet: Fleet, tmp_path: Path) -> None:
    good = "municipality,provider,rank\n" + "\n".join(
        [
            f"{CPT_E_NAME},easypay,2",
            f"{CPT_E_NAME},ontec,1",
            f"{CPT_E_NAME},ipay,excluded",
            "eThekwini Electricity,sandulela,1",
        ]
    )
    answer = fleet.admin("POST", "/preferences.csv", content=good.encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()[0] == {"municipality": CPT_E_NAME, "providers": ["ontec", "easypay"], "excluded": ["ipay"]}
    before = fleet.admin("GET", "/preferences").json()
    assert len(before) == 4

    bad = "municipality,provider,rank\neThekwini Electricity,ipay,1\nCity of Cape Town Electricity,kazang,first\n"
    answer = fleet.admin("POST", "/preferences.csv", content=bad.encode())
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["line 3: rank"]
    assert fleet.admin("GET", "/preferences").json() == before  # the good first row was not applied either

    wrong_header = fleet.admin("POST", "/preferences.csv", content=b"town,provider,rank\nx,ipay,1\n")
    assert wrong_header.status_code == 400 and wrong_header.json()["errors"][0]["field"] == "line 1"

    # The CLI reads the same format, with the same checks.
    path = tmp_path / "prefs.csv"
    path.write_text(bad)
    refused = xhuma("routing", "upload", str(path), env=fleet.env, check=False)
    assert refused.returncode == 2 and "line 3: rank" in refused.stdout
    path.write_text(f"municipality,provider,rank\n{CPT_E_NAME},switchone,1\n")
    xhuma("routing", "upload", str(path), "--actor", "pat", env=fleet.env)
    rows = [p for p in fleet.admin("GET", "/preferences").json() if p["municipality"] == CPT_E_NAME]
    assert [(p["provider"], p["rank"]) for p in rows] == [("switchone", 1)]
    assert fleet.admin("GET", "/audit").json()[0]["actor"] == "pat"


def test_refresh_follows_changed_coverage_and_keeps_preferences(fleet: Fleet) -> None:
    learned(fleet, CPT_E, 4)
    xhuma("routing", "prefer", CPT_E_NAME, "--providers", "switchone,easypay", env=fleet.env)

    # switchone stops serving Cape Town and kazang starts; the refresh notices both.
    fleet.provider("switchone", municipalities=["ETH-E", "NMB-E"])
    fleet.provider("kazang", municipalities=["JHB-E", "EKU-E", "MAN-E", "JHB-G", "CPT-E"])
    out = xhuma("routing", "refresh", "--older-than-days", "0", env=fleet.env).stdout
    assert "1 meters" in out
    table = fleet.table(CPT_E)
    assert table["switchone"] == "not_supported" and table["kazang"] == "supported"
    preferences = xhuma("routing", "preferences", env=fleet.env).stdout
    assert "switchone" in preferences  # the municipality's preference is kept...
    purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
    assert answer.status_code == 201
    assert fleet.tx(purchase["id"])["provider"] == "easypay"  # ...and the next preferred serves the meter

    # An operator forces a re-broadcast once switchone is back: the preference applies again.
    fleet.provider("switchone", municipalities=["CPT-E", "ETH-E", "NMB-E"])
    answer = fleet.admin("POST", f"/meters/{CPT_E}/rebroadcast")
    assert answer.status_code == 200, answer.text
    assert {r["provider"]: r["status"] for r in answer.json()}["switchone"] == "supported"
    purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
    assert fleet.tx(purchase["id"])["provider"] == "switchone"
    assert fleet.admin("POST", "/meters/not-a-meter!/rebroadcast").json()["errors"][0]["field"] == "meterId"
    assert ("ops", "rebroadcast") in {(a["actor"], a["action"]) for a in fleet.admin("GET", "/audit").json()}


def test_the_scheduled_refresh_runs_by_itself(fresh_database_url: str, tmp_path: Path) -> None:
    with running_fleet(fresh_database_url, tmp_path, switch_settings="routing_refresh_days = 0.00002\n") as fleet:
        learned(fleet, CPT_E, 4)
        fleet.provider("ipay", municipalities=["ETH-E"])
        wait_for(lambda: fleet.table(CPT_E)["ipay"] == "not_supported", seconds=20)


def test_the_health_check_takes_a_provider_out_and_brings_it_back(fresh_database_url: str, tmp_path: Path) -> None:
    with running_fleet(fresh_database_url, tmp_path, switch_settings="health_check_seconds = 0.2\n") as fleet:
        learned(fleet, CPT_E, 4)
        xhuma("routing", "prefer", CPT_E_NAME, "--providers", "ipay,easypay", env=fleet.env)

        def upstream_peers(purchase_id: str) -> list[str]:
            shown = xhuma("tx", "show", purchase_id, "--json", env=fleet.env).stdout
            return [m["peer"] for m in json.loads(shown)["messages"] if m["leg"] == "upstream"]

        fleet.provider("ipay", mode="unavailable")
        purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
        assert answer.status_code == 201
        # Whether or not a check has run yet, nothing is bought at ipay; once one has, ipay is
        # not even asked.
        assert fleet.tx(purchase["id"])["provider"] == "easypay"

        def skipped() -> bool:
            purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
            return answer.status_code == 201 and upstream_peers(purchase["id"]) == ["easypay", "easypay"]

        wait_for(skipped)
        fleet.provider("ipay", mode="normal")

        def back() -> bool:
            purchase, answer = fleet.retailer.purchase(CPT_E, 2000)
            return answer.status_code == 201 and fleet.tx(purchase["id"])["provider"] == "ipay"

        wait_for(back)


def test_a_retry_stays_with_the_provider_of_the_purchase(fresh_database_url: str, tmp_path: Path) -> None:
    with running_fleet(fresh_database_url, tmp_path, provider_settings="read_timeout = 1.0\n") as fleet:
        fleet.retailer.lookup("TST011")
        table = wait_for(lambda: (t := fleet.table("TST011")) and "unconfirmed" not in t.values() and t)
        assert set(table.values()) == {"supported"}
        rows = fleet.admin("GET", "/table?meter=TST011").json()
        utility = rows[0]["municipality"]
        fleet.admin("PUT", f"/preferences/{utility}", json={"providers": ["easypay"]})
        purchase, answer = fleet.retailer.purchase("TST011", 10000)
        assert answer.status_code == 504  # easypay took it and did not answer in time

        fleet.admin("PUT", f"/preferences/{utility}", json={"providers": ["kazang"]})
        answer = fleet.retailer.retry(purchase)
        assert answer.status_code == 201, answer.text
        tx = fleet.tx(purchase["id"])
        assert tx["provider"] == "easypay"
        sold = [s for s in fleet.ledger("easypay") if s["meterId"] == "TST011"]
        assert len(sold) == 1 and sold[0]["retries"] >= 1
        assert not [s for s in fleet.ledger("kazang") if s["meterId"] == "TST011"]


def test_weights_hold_over_ten_thousand_purchases(fleet: Fleet) -> None:
    learned(fleet, CPT_E, 4)
    weights = {"ipay": 50, "ontec": 20, "easypay": 20, "switchone": 10}
    assert fleet.admin("PUT", "/weights", json=weights).status_code == 200
    total = 10_000
    statuses = asyncio.run(_purchases(fleet.switch.url, CPT_E, total, concurrency=48))
    assert statuses == Counter({201: total})
    # What the providers themselves sold, not what the switch says it did.
    sold = {p: sum(s["meterId"] == CPT_E for s in fleet.ledger(p)) for p in weights}
    assert sum(sold.values()) == total
    for provider, weight in weights.items():
        share = weight / sum(weights.values())
        expected = total * share
        # 4.5 standard deviations of a binomial count: a correct router fails this about once in
        # 150,000 runs per provider; a router off by 2 points of share fails it nearly always.
        assert abs(sold[provider] - expected) < 4.5 * (total * share * (1 - share)) ** 0.5, (provider, sold)


async def _purchases(base_url: str, meter: str, total: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    auth = {"Authorization": "Basic " + base64.b64encode(b"till:pw").decode()}
    todo = iter(range(total))

    async def till(session: aiohttp.ClientSession) -> None:
        for _ in todo:
            message = base_message("r1", meter={"meterId": meter}, purchaseAmount={"amount": 1000, "currency": "710"})
            message["id"] = str(uuid.uuid4())
            async with session.post(f"{base_url}/prepaidutility/v3/tokenPurchases/{message['id']}", json=message) as r:
                await r.read()
                statuses[r.status] += 1

    async with aiohttp.ClientSession(headers=auth) as session:
        await asyncio.gather(*(till(session) for _ in range(concurrency)))
    return statuses
