"""Store-and-forward against a simulator made to answer each way, with real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Retailer, Server, free_port, process_env, xhuma
from xhuma.domain.delivery import Answer, Verdict, advice_verdict, backoff_seconds, retry_verdict
from xhuma.domain.outcomes import Outcome
from xhuma.saf import queue
from xhuma.saf.worker import SafSettings
from xhuma.storage.db import Database, migrate


@dataclass
class Rig:
    simulator: Server
    switch: Server
    env: dict[str, str]
    retailer: Retailer
    database_url: str
    folder: Path

    def configure(self, **changes: Any) -> None:
        assert httpx.post(self.simulator.url + "/_sim/config", json=changes).status_code == 200

    def entries(self) -> list[dict[str, Any]]:
        out = xhuma("saf", "list", "--json", "--limit", "1000", env=self.env).stdout
        return [json.loads(line) for line in out.splitlines()]

    def entry_for(self, tx_id: str) -> dict[str, Any]:
        (entry,) = [e for e in self.entries() if e["tx_id"] == tx_id]
        return entry

    def advice_tx(self, retail_id: str) -> str:
        return json.loads(xhuma("tx", "show", retail_id, "--json", env=self.env).stdout)["transaction"]["id"]


def wait_for(check, seconds: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def start_rig(
    folder: Path,
    database_url: str,
    *,
    in_server: bool,
    capabilities: str = "",
    saf_extra: str = "",
    read_timeout: float = 1.0,
) -> Rig:
    sim_port, port = free_port(), free_port()
    config = folder / "xhuma.toml"
    config.write_text(
        f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{sim_port}"\n'
        f"read_timeout = {read_timeout}\n{capabilities}\n"
        f"[saf]\nin_server = {'true' if in_server else 'false'}\nbase_delay_seconds = 0.05\nmax_delay_seconds = 0.2\n"
        f"lease_seconds = {read_timeout + 1}\npoll_seconds = 0.05\n{saf_extra}"
    )
    env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config))
    simulator = Server(["simulate", "ppu", "--port", str(sim_port), "--seed", "3"], sim_port, env, folder / "sim.log")
    xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=env)
    switch = Server(["serve", "--port", str(port)], port, env, folder / "switch.log")
    return Rig(simulator, switch, env, Retailer(switch.url, "till", "pw", "r1"), database_url, folder)


@pytest.fixture
def rig(fresh_database_url: str, tmp_path: Path) -> Iterator[Rig]:
    rig = start_rig(tmp_path, fresh_database_url, in_server=True)
    yield rig
    rig.switch.stop()
    rig.simulator.stop()


def test_repeat_until_final_then_delivered(rig: Rig) -> None:
    purchase, answer = rig.retailer.purchase("12345678901", 5000)
    assert answer.status_code == 201
    rig.configure(mode="unavailable")  # 503: the advice must still arrive, so it repeats
    advice, answer = rig.retailer.confirm(purchase["id"], answer.json()["thirdPartyIdentifiers"])
    assert answer.status_code == 202
    tx_id = rig.advice_tx(advice["id"])
    entry = wait_for(lambda: (e := rig.entry_for(tx_id))["attempts"] >= 3 and e)
    assert entry["state"] == "pending" and entry["last_status"] == 503
    rig.configure(mode="normal")
    entry = wait_for(lambda: (e := rig.entry_for(tx_id))["state"] == "delivered" and e)
    ledger = httpx.get(rig.simulator.url + "/_sim/ledger").json()
    assert [a["id"] for a in ledger["advices"]] == [tx_id]


def test_final_refusal_stops_for_a_person_and_an_unmatched_reversal_keeps_trying(rig: Rig) -> None:
    first, answer1 = rig.retailer.purchase("12345678902", 5000)
    second, answer2 = rig.retailer.purchase("12345678903", 5000)
    assert answer1.status_code == answer2.status_code == 201
    httpx.post(rig.simulator.url + "/_sim/reset")  # the provider forgets both purchases
    confirmation, _ = rig.retailer.confirm(first["id"], [])
    reversal, _ = rig.retailer.reverse(second["id"], [])
    stopped = wait_for(lambda: (e := rig.entry_for(rig.advice_tx(confirmation["id"])))["state"] == "exception" and e)
    assert stopped["last_status"] == 404 and stopped["attempts"] == 1
    # The reversal may have overtaken its purchase: it is repeated, never dropped.
    trying = wait_for(lambda: (e := rig.entry_for(rig.advice_tx(reversal["id"])))["attempts"] >= 3 and e)
    assert trying["state"] == "pending" and trying["last_status"] == 404
    exceptions = xhuma("exceptions", "list", "--json", env=rig.env).stdout
    assert "delivery_stopped" in exceptions

    # A person retries it (still refused), then resolves it with a note.
    xhuma("saf", "retry", str(stopped["id"]), env=rig.env)
    wait_for(lambda: (e := rig.entry_for(stopped["tx_id"]))["state"] == "exception" and e["attempts"] == 2)
    assert xhuma("saf", "resolve", str(stopped["id"]), "--note", "", env=rig.env, check=False).returncode != 0
    xhuma("saf", "resolve", str(stopped["id"]), "--note", "settled by phone with provider", env=rig.env)
    assert rig.entry_for(stopped["tx_id"])["state"] == "resolved"
    assert xhuma("saf", "retry", str(stopped["id"]), env=rig.env, check=False).returncode == 1


def test_admin_api_needs_the_admin_role(rig: Rig) -> None:
    xhuma(
        "clients",
        "add",
        "--username",
        "ops",
        "--password",
        "ops-pw",
        "--client-id",
        "ops",
        "--role",
        "admin",
        env=rig.env,
    )
    assert httpx.get(rig.switch.url + "/admin/saf", auth=("till", "pw")).status_code == 403
    answer = httpx.get(rig.switch.url + "/admin/saf?state=pending", auth=("ops", "ops-pw"))
    assert answer.status_code == 200 and isinstance(answer.json(), list)
    answer = httpx.get(rig.switch.url + "/admin/saf?limit=abc", auth=("ops", "ops-pw"))
    assert answer.status_code == 400 and answer.json()["field"] == "limit"
    answer = httpx.post(rig.switch.url + "/admin/saf/999999/resolve", json={"note": "x"}, auth=("ops", "ops-pw"))
    assert answer.status_code == 409
    # A retail credential is not an operator's, and an operator's is not a retailer's.
    message, answer = Retailer(rig.switch.url, "ops", "ops-pw", "ops").lookup("12345678901")
    assert answer.status_code == 403


def test_a_killed_worker_s_entry_is_delivered_by_another(fresh_database_url: str, tmp_path: Path) -> None:
    # The read timeout leaves the kill below seconds to land while the delivery is in flight.
    rig = start_rig(tmp_path, fresh_database_url, in_server=False, read_timeout=4.0)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        purchase, answer = rig.retailer.purchase("12345678904", 5000)
        assert answer.status_code == 201
        rig.configure(mode="hang")
        advice, answer = rig.retailer.confirm(purchase["id"], answer.json()["thirdPartyIdentifiers"])
        assert answer.status_code == 202
        tx_id = rig.advice_tx(advice["id"])
        log = (tmp_path / "worker-a.log").open("wb")
        workers.append(
            subprocess.Popen([sys.executable, "-m", "xhuma", "saf", "work"], env=rig.env, stdout=log, stderr=log)
        )
        first = wait_for(lambda: (e := rig.entry_for(tx_id))["lease_owner"] and e)
        os.kill(workers[0].pid, signal.SIGKILL)  # mid-delivery: the provider is still holding the request
        workers[0].wait()
        rig.configure(mode="normal")
        log = (tmp_path / "worker-b.log").open("wb")
        workers.append(
            subprocess.Popen([sys.executable, "-m", "xhuma", "saf", "work"], env=rig.env, stdout=log, stderr=log)
        )
        done = wait_for(lambda: (e := rig.entry_for(tx_id))["state"] == "delivered" and e, seconds=20)
        assert done["lease_owner"] is None and first["lease_owner"]
        assert done["attempts"] == 1  # the dead worker never settled its attempt
        ledger = httpx.get(rig.simulator.url + "/_sim/ledger").json()
        assert [a["id"] for a in ledger["advices"]] == [tx_id]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=10)
        rig.switch.stop()
        rig.simulator.stop()


def test_reversal_a_provider_cannot_take_becomes_an_exception(fresh_database_url: str, tmp_path: Path) -> None:
    rig = start_rig(tmp_path, fresh_database_url, in_server=True, capabilities='capabilities = ["retry"]')
    try:
        kept, answer = rig.retailer.purchase("12345678905", 5000)
        assert answer.status_code == 201
        assert rig.retailer.confirm(kept["id"], [])[1].status_code == 202
        undone, answer = rig.retailer.purchase("12345678906", 5000)
        reversal, answer = rig.retailer.reverse(undone["id"], [])
        assert answer.status_code == 202
        assert rig.entries() == []  # nothing can be delivered to this provider
        rows = [json.loads(line) for line in xhuma("exceptions", "list", "--json", env=rig.env).stdout.splitlines()]
        assert [(r["reason"], r["tx_id"]) for r in rows] == [("reversal_not_supported", rig.advice_tx(reversal["id"]))]
    finally:
        rig.switch.stop()
        rig.simulator.stop()


def test_ordered_queue_delivers_one_at_a_time_in_order(fresh_database_url: str) -> None:
    db = Database(fresh_database_url)
    migrate(db.engine)
    db.run_sync(
        lambda c: c.exec_driver_sql(
            "INSERT INTO transactions (id, client_id, retail_id, id_space, kind, state, created_us, updated_us)"
            " VALUES ('t1', 'c', 'r', 'request', 'purchase', 'approved', 0, 0)"
        )
    )
    for n, name in enumerate(("q", "q", "other")):
        db.run_sync(queue.enqueue(name, "t1", f"op{n}", "POST", "http://x", "{}"))
    ids = [e["id"] for e in reversed(db.run_sync(queue.list_entries()))]
    claimed = db.run_sync(queue.claim("w1", 10, 10_000_000, ordered={"q"}))
    assert sorted(e.id for e in claimed) == [ids[0], ids[2]]
    assert db.run_sync(queue.claim("w2", 10, 10_000_000, ordered={"q"})) == []  # leased, and the next waits
    db.engine.dispose()


def test_processing_windows() -> None:
    settings = SafSettings(windows={"day": (clock(6), clock(22)), "night": (clock(22), clock(6))})
    assert settings.closed_queues(datetime(2026, 1, 1, 12, tzinfo=UTC)) == ["night"]
    assert settings.closed_queues(datetime(2026, 1, 1, 23, tzinfo=UTC)) == ["day"]


@pytest.mark.parametrize(
    ("reversal", "answer", "verdict"),
    [
        (False, Answer(Outcome.SUCCESSFUL, 202, None), Verdict.DELIVERED),
        (False, Answer(Outcome.UNKNOWN, None, None), Verdict.REPEAT),
        (False, Answer(Outcome.UNKNOWN, 500, "GENERAL_ERROR"), Verdict.REPEAT),
        (False, Answer(Outcome.FAILED, 503, None), Verdict.REPEAT),
        (False, Answer(Outcome.FAILED, None, None, reached=False), Verdict.REPEAT),
        (False, Answer(Outcome.FAILED, 400, "DUPLICATE_RECORD"), Verdict.DELIVERED),
        (False, Answer(Outcome.FAILED, 400, "FORMAT_ERROR"), Verdict.STOP),
        (False, Answer(Outcome.FAILED, 404, "UNABLE_TO_LOCATE_RECORD"), Verdict.STOP),
        (True, Answer(Outcome.FAILED, 404, "UNABLE_TO_LOCATE_RECORD"), Verdict.REPEAT),
        (True, Answer(Outcome.FAILED, 501, None), Verdict.STOP),
    ],
)
def test_advice_verdicts(reversal: bool, answer: Answer, verdict: Verdict) -> None:
    assert advice_verdict(answer, reversal=reversal) is verdict


def test_retry_verdicts() -> None:
    assert retry_verdict(Answer(Outcome.FAILED, 400, "INVALID_AMOUNT")) is Verdict.DELIVERED
    assert retry_verdict(Answer(Outcome.UNKNOWN, 504, None)) is Verdict.REPEAT


def test_backoff_grows_within_its_cap() -> None:
    import random

    rng = random.Random(1)
    delays = [max(backoff_seconds(n, 0.5, 60, rng) for _ in range(50)) for n in range(12)]
    assert all(0.25 <= d <= 60 for d in delays)
    assert delays[8] > delays[1]


def test_an_unreadable_success_is_unknown_and_retrieved(rig: Rig) -> None:
    assert rig.retailer.lookup("12345678907")[1].status_code == 201
    rig.configure(mode="garbage")  # 200 with a body that is not JSON: money may have moved
    purchase, answer = rig.retailer.purchase("12345678907", 5000)
    assert answer.status_code == 504 and answer.json()["errorType"] == "UPSTREAM_UNAVAILABLE"
    rig.configure(mode="normal")
    view = wait_for(
        lambda: (
            (v := json.loads(xhuma("tx", "show", purchase["id"], "--json", env=rig.env).stdout))["transaction"]["state"]
            == "approved"
            and v
        )
    )
    assert view["transaction"]["retail_status"] == 201
    again = rig.retailer.retry(purchase)
    assert again.status_code == 201 and again.json()["tokens"]


def test_an_entry_too_old_to_deliver_becomes_an_exception(fresh_database_url: str, tmp_path: Path) -> None:
    rig = start_rig(tmp_path, fresh_database_url, in_server=True, saf_extra="max_age_seconds = 1\n")
    try:
        purchase, answer = rig.retailer.purchase("12345678908", 5000)
        assert answer.status_code == 201
        rig.configure(mode="unavailable")
        advice, answer = rig.retailer.reverse(purchase["id"], [])
        assert answer.status_code == 202
        tx_id = rig.advice_tx(advice["id"])
        entry = wait_for(lambda: (e := rig.entry_for(tx_id))["state"] == "exception" and e)
        assert entry["attempts"] > 1 and entry["last_status"] == 503
        rows = [json.loads(line) for line in xhuma("exceptions", "list", "--json", env=rig.env).stdout.splitlines()]
        assert [(r["reason"], r["tx_id"]) for r in rows] == [("delivery_expired", tx_id)]
    finally:
        rig.switch.stop()
        rig.simulator.stop()
