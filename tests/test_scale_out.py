"""Scale-out: two switch servers and two store-and-forward workers, each its own OS process,
sharing one PostgreSQL, under concurrent load. Nothing may depend on one process's memory:
what one node learns or is told, every node uses; no purchase is lost or doubled; no advice is
delivered twice."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.conftest import BACKENDS, fresh_database
from tests.fleet import CPT_E, CPT_E_NAME, Fleet, learned, running_fleet, wait_for
from tests.support import Retailer, Server, base_message, free_port, new_id, now, xhuma

PURCHASES = 400
pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="scale-out is a PostgreSQL deployment")


def test_two_servers_and_two_workers_share_one_postgresql(tmp_path: Path) -> None:
    with (
        fresh_database("postgresql", tmp_path) as url,
        running_fleet(
            url,
            tmp_path,
            provider_settings="read_timeout = 3.0\n",
            sections="[saf]\nin_server = false\nlease_seconds = 4\npoll_seconds = 0.05\n",
        ) as fleet,
    ):
        port = free_port()
        second = Server(["serve", "--port", str(port)], port, fleet.env, tmp_path / "switch-b.log")
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "xhuma", "saf", "work"],
                env=fleet.env,
                stdout=(tmp_path / f"worker-{n}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for n in (1, 2)
        ]
        try:
            _run(fleet, second.url)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=15)
            second.stop()


def _run(fleet: Fleet, second_url: str) -> None:
    # What node A learned (the contract table) node B routes by, without broadcasting again.
    learned(fleet, CPT_E, 4)
    message, answer = Retailer(second_url, "till", "pw", "r1").lookup(CPT_E)
    assert answer.status_code == 201
    shown = json.loads(xhuma("tx", "show", message["id"], "--json", env=fleet.env).stdout)
    assert len([m for m in shown["messages"] if m["leg"] == "upstream" and m["direction"] == "request"]) == 1

    # What an operator tells node A, node B obeys.
    assert fleet.admin("PUT", f"/preferences/{CPT_E_NAME}", json={"providers": ["switchone"]}).status_code == 200

    results = asyncio.run(_load([fleet.switch.url, second_url]))
    assert Counter(r["status"] for r in results) == Counter({201: PURCHASES})
    assert all(r["retry_token"] == r["token"] for r in results), "a retry on the other node must retrieve"
    assert all(r["confirm_status"] == 202 for r in results)

    # The provider sold each purchase exactly once, and only the preferred provider sold any.
    sold = [s for s in fleet.ledger("switchone") if s["meterId"] == CPT_E]
    assert len(sold) == PURCHASES and len({s["id"] for s in sold}) == PURCHASES
    assert {tuple(s["tokens"]) for s in sold} == {(r["token"],) for r in results}
    for other in ("ipay", "ontec", "easypay"):
        assert not [s for s in fleet.ledger(other) if s["meterId"] == CPT_E]

    # Every confirmation reached the provider once: two workers never delivered the same one.
    def all_delivered() -> list[dict[str, Any]] | None:
        advices = _advices(fleet)
        return advices if len(advices) == PURCHASES else None

    advices = wait_for(all_delivered, seconds=60)
    assert all(a["deliveries"] == 1 for a in advices)
    assert {a["requestId"] for a in advices} == {s["id"] for s in sold}


def _advices(fleet: Fleet) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{fleet.simulator.url}/switchone/_sim/ledger").json()["advices"]
    return found


async def _load(nodes: list[str]) -> list[dict[str, Any]]:
    """Each purchase through one node; its retry and confirmation through the other."""
    auth = {"Authorization": "Basic " + base64.b64encode(b"till:pw").decode()}
    results: list[dict[str, Any]] = []
    todo = iter(range(PURCHASES))

    async def till(session: aiohttp.ClientSession) -> None:
        for n in todo:
            here, there = nodes[n % 2], nodes[(n + 1) % 2]
            message = base_message("r1", meter={"meterId": CPT_E}, purchaseAmount={"amount": 1000, "currency": "710"})
            path = f"/prepaidutility/v3/tokenPurchases/{message['id']}"
            async with session.post(here + path, json=message) as r:
                body = await r.json()
                result: dict[str, Any] = {"status": r.status, "token": body.get("tokens", [{}])[0].get("token")}
            async with session.post(f"{there}{path}/retry", json={**message, "id": new_id()}) as r:
                result["retry_token"] = (await r.json()).get("tokens", [{}])[0].get("token")
            advice = {
                "id": new_id(),
                "requestId": message["id"],
                "time": now(),
                "thirdPartyIdentifiers": body.get("thirdPartyIdentifiers", []),
                "tenders": [{"tenderType": "CASH", "amount": {"amount": 1000, "currency": "710"}}],
            }
            async with session.post(f"{there}{path}/confirmations/{advice['id']}", json=advice) as r:
                result["confirm_status"] = r.status
            results.append(result)

    async with aiohttp.ClientSession(headers=auth) as session:
        await asyncio.gather(*(till(session) for _ in range(24)))
    return results
