"""The simulated ten-provider fleet and a switch in front of it, as real processes, for the
routing tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support import Retailer, Server, free_port, process_env, xhuma

T = TypeVar("T")

CPT_E = "10112345678"  # City of Cape Town electricity: ipay, ontec, easypay, switchone
CPT_E_NAME = "City of Cape Town Electricity"
ADMIN = ("ops", "ops-pw")


@dataclass
class Fleet:
    simulator: Server
    switch: Server
    env: dict[str, str]
    retailer: Retailer

    def provider(self, name: str, **changes: Any) -> None:
        assert httpx.post(f"{self.simulator.url}/{name}/_sim/config", json=changes).status_code == 200

    def ledger(self, name: str) -> list[dict[str, Any]]:
        purchases: list[dict[str, Any]] = httpx.get(f"{self.simulator.url}/{name}/_sim/ledger").json()["purchases"]
        return purchases

    def table(self, meter: str) -> dict[str, str]:
        out = xhuma("routing", "table", "--meter", meter, "--json", env=self.env).stdout
        return {row["provider"]: row["status"] for row in map(json.loads, out.splitlines())}

    def tx(self, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(xhuma("tx", "show", ref, "--json", env=self.env).stdout)["transaction"]
        return found

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", ADMIN)
        return httpx.request(method, f"{self.switch.url}/admin/routing{path}", timeout=30, **kwargs)


@contextmanager
def running_fleet(
    database_url: str, folder: Path, *, switch_settings: str = "", provider_settings: str = "", sections: str = ""
) -> Iterator[Fleet]:
    """`switch_settings` go under [switch]; `provider_settings` into every [[providers]] block;
    `sections` (whole tables, e.g. [saf]) at the end."""
    port, switch_port = free_port(), free_port()
    providers = folder / "providers.toml"
    env = process_env(XHUMA_DATABASE_URL=database_url)
    simulator = Server(
        ["simulate", "fleet", "--port", str(port), "--seed", "5", "--config-out", str(providers)],
        port,
        env,
        folder / "fleet.log",
    )
    blocks = providers.read_text().replace('kind = "ppu_v3"\n', 'kind = "ppu_v3"\n' + provider_settings)
    config = folder / "xhuma.toml"
    config.write_text(f"[switch]\nbroadcast_timeout_seconds = 1.5\n{switch_settings}\n" + blocks + "\n" + sections)
    env["XHUMA_CONFIG"] = str(config)
    xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=env)
    xhuma(
        "clients",
        "add",
        "--username",
        ADMIN[0],
        "--password",
        ADMIN[1],
        "--client-id",
        "ops",
        "--role",
        "admin",
        env=env,
    )
    switch = Server(["serve", "--port", str(switch_port)], switch_port, env, folder / "switch.log")
    try:
        yield Fleet(simulator, switch, env, Retailer(switch.url, "till", "pw", "r1"))
    finally:
        switch.stop()
        simulator.stop()


def wait_for(check: Callable[[], T], seconds: float = 10.0) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def learned(fleet: Fleet, meter: str, supporters: int) -> dict[str, str]:
    """Look the meter up and wait until `supporters` providers are known to serve it."""
    assert fleet.retailer.lookup(meter)[1].status_code == 201
    return wait_for(lambda: (t := fleet.table(meter)) and sum(s == "supported" for s in t.values()) == supporters and t)
