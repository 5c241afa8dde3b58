"""Monitoring through a real `xhuma serve`: /metrics counts purchases by outcome and times both
legs; /health/services turns a stopped simulator's provider UNHEALTHY and back to HEALTHY;
several processes sharing PROMETHEUS_MULTIPROC_DIR answer with the sum of their counts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Switch, write_config
from tests.support import ROOT, Retailer, Server, free_port, process_env, xhuma

ADMIN = ("metrics-ops", "metrics-pw")
PURCHASE = "createTokenPurchaseRequest"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(url + "/metrics", auth=ADMIN, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def purchases(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return value(samples, "xhuma_requests_total", service="ppu", operation=PURCHASE, provider="sim", outcome=outcome)


@pytest.fixture(scope="module")
def operator(switch: Switch) -> Switch:
    username, password = ADMIN
    switch.cli(
        "clients", "add", "--username", username, "--password", password, "--client-id", username, "--role", "admin"
    )
    return switch


def test_purchases_are_counted_by_outcome_and_both_legs_timed(operator: Switch) -> None:
    before = scrape(operator.url)
    for _ in range(3):
        _, answer = operator.retailer.purchase("TST001", 10000)
        assert answer.status_code == 201, answer.text
    _, declined = operator.retailer.purchase("TST001", 12345)
    assert declined.status_code == 400 and declined.json()["errorType"] == "INVALID_AMOUNT"
    after = scrape(operator.url)

    assert purchases(after, "approved") - purchases(before, "approved") == 3
    assert purchases(after, "declined") - purchases(before, "declined") == 1
    assert purchases(after, "unknown") == purchases(before, "unknown")
    for leg in ("retail", "upstream"):
        counted = value(after, "xhuma_leg_seconds_count", service="ppu", leg=leg)
        assert counted - value(before, "xhuma_leg_seconds_count", service="ppu", leg=leg) >= 4, leg
    assert value(after, "xhuma_db_commit_seconds_count") > value(before, "xhuma_db_commit_seconds_count")


def test_store_and_forward_gauges_come_from_the_database(operator: Switch) -> None:
    _, answer = operator.retailer.purchase("TST001", 10000)
    assert answer.status_code == 201
    confirmed = operator.retailer.confirm(answer.json()["id"], answer.json()["thirdPartyIdentifiers"])[1]
    assert confirmed.status_code == 202
    samples = scrape(operator.url)
    queued = {labels: n for (name, labels), n in samples.items() if name == "xhuma_saf_entries"}
    assert queued and all(dict(labels)["queue"].startswith("ppu:") for labels in queued)
    assert sum(queued.values()) >= 1


def test_the_grafana_dashboard_reads_only_metrics_the_switch_exports(operator: Switch) -> None:
    answer = httpx.get(operator.url + "/metrics", auth=ADMIN, timeout=10)
    exported = {family.name for family in text_string_to_metric_families(answer.text)}
    dashboard = json.loads((ROOT / "docs" / "grafana" / "xhuma.json").read_text())
    read = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"xhuma_[a-z_]+", target["expr"])
    }
    assert len(read) >= 5 and read <= {re.sub(r"_total$", "", name) for name in exported}, read - exported


@pytest.mark.parametrize("path", ["/metrics", "/health/services"])
def test_monitoring_routes_need_admin_credentials(operator: Switch, path: str) -> None:
    assert httpx.get(operator.url + path).status_code == 401
    retail = httpx.get(operator.url + path, auth=("till", "s3cret-till"))
    assert retail.status_code == 403 and "error" in retail.json()
    assert httpx.get(operator.url + path, auth=ADMIN).status_code == 200


def test_a_bad_window_is_refused_naming_it(operator: Switch) -> None:
    answer = httpx.get(operator.url + "/health/services?window=soon", auth=ADMIN)
    assert answer.status_code == 400 and answer.json()["field"] == "window"


class Rig:
    def __init__(self, folder: Path, database_url: str, *, multiproc: Path | None = None) -> None:
        self.sim_port = free_port()
        self.folder = folder
        sim_url = f"http://127.0.0.1:{self.sim_port}"
        config = write_config(folder / "xhuma.toml", sim_url, read_timeout=2.0)
        text = config.read_text().replace("[switch]\n", "[switch]\nhealth_check_seconds = 0.2\n")
        config.write_text(text + f'health_url = "{sim_url}/health"\nconnect_timeout = 0.5\n')
        extra = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)} if multiproc else {}
        self.env = process_env(
            XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret", **extra
        )
        self.simulator = self.start_simulator()
        xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=self.env)
        username, password = ADMIN
        added = ("--username", username, "--password", password, "--client-id", username, "--role", "admin")
        xhuma("clients", "add", *added, env=self.env)
        self.switches = [self.serve(0)]

    def start_simulator(self) -> Server:
        args = ["simulate", "ppu", "--port", str(self.sim_port), "--seed", "5"]
        return Server(args, self.sim_port, process_env(), self.folder / "sim.log")

    def serve(self, index: int, *more: str) -> Server:
        port = free_port()
        return Server(["serve", "--port", str(port), *more], port, self.env, self.folder / f"switch-{index}.log")

    def stop(self) -> None:
        for server in self.switches:
            server.stop()
        self.simulator.stop()


@pytest.fixture
def rig(fresh_database_url: str, tmp_path: Path) -> Iterator[Rig]:
    running = Rig(tmp_path, fresh_database_url)
    yield running
    running.stop()


def health(url: str) -> dict[str, Any]:
    answer = httpx.get(url + "/health/services", auth=ADMIN, timeout=10)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def provider(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in document["providers"] if p["name"] == name)


def service(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["services"] if s["name"] == name)


def until_provider_is(url: str, name: str, status: str, seconds: float = 20.0) -> dict[str, Any]:
    """Polls /health/services until the provider has `status` (the health check runs every 0.2 s);
    no assertion on how long that takes."""
    deadline = time.monotonic() + seconds
    while True:
        document = health(url)
        if provider(document, name)["status"] == status:
            return document
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never {status}: {document}")
        time.sleep(0.1)


def test_a_stopped_simulator_turns_its_provider_unhealthy_and_back(rig: Rig) -> None:
    url = rig.switches[0].url
    till = Retailer(url, "till", "pw", "r1")
    for _ in range(2):
        assert till.purchase("TST001", 10000)[1].status_code == 201
    healthy = health(url)
    sim = provider(healthy, "sim")
    assert sim["status"] == "HEALTHY" and sim["success_rate"] == 1.0 and sim["requests"] >= 2
    assert {s["name"] for s in healthy["services"]} == {"ppu", "suv", "eft", "finance", "saf"}
    assert service(healthy, "ppu")["status"] == "HEALTHY"

    rig.simulator.stop()
    down = until_provider_is(url, "sim", "UNHEALTHY")
    assert provider(down, "sim")["reasons"] == ["its health_url poll failed"]
    assert service(down, "ppu")["status"] == "UNHEALTHY" and down["status"] == "UNHEALTHY"

    rig.simulator = rig.start_simulator()
    back = until_provider_is(url, "sim", "HEALTHY")
    assert provider(back, "sim")["reasons"] == [] and service(back, "ppu")["status"] == "HEALTHY"


def test_processes_sharing_a_multiprocess_folder_answer_with_the_sum(fresh_database_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    running = Rig(tmp_path, fresh_database_url, multiproc=shared)
    try:
        running.switches.append(running.serve(1))
        first, second = (Retailer(s.url, "till", "pw", "r1") for s in running.switches)
        assert first.purchase("TST001", 10000)[1].status_code == 201
        assert second.purchase("TST001", 10000)[1].status_code == 201
        assert second.purchase("TST001", 10000)[1].status_code == 201
        for server in running.switches:
            assert purchases(scrape(server.url), "approved") == 3
    finally:
        running.stop()


def test_json_log_lines_carry_the_transactions_correlation_id(rig: Rig) -> None:
    server = rig.serve(1, "--log-format", "json")
    rig.switches.append(server)
    purchase, answer = Retailer(server.url, "till", "pw", "r1").purchase("TST001", 10000)
    assert answer.status_code == 201
    server.stop()
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    concluded = [line for line in lines if line["logger"] == "xhuma.engine"]
    shown = json.loads(xhuma("tx", "show", purchase["id"], "--json", env=rig.env).stdout)["transaction"]
    assert [line["correlation_id"] for line in concluded if PURCHASE in line["message"]] == [shown["id"]]
    assert all(line["level"] and line["time"] for line in lines)


def test_an_unknown_log_format_is_refused_naming_the_option() -> None:
    refused = xhuma("serve", "--log-format", "xml", check=False)
    assert refused.returncode == 2 and "--log-format" in refused.stderr
