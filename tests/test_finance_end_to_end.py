"""A day of purchases reconciled end to end through real processes, on both backends: the PPU
simulator's own extract (from its ledger, with one discrepancy of each kind injected) loaded
with `xhuma recon load`, matched with `xhuma recon run`, and every record in the right status
in `xhuma recon summary --json` and `xhuma recon list`; two days on, what is still unmatched
has expired."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import Retailer, Server, free_port, process_env, xhuma
from tests.test_finance_config import PROCESS

ZONE = "Africa/Johannesburg"


@pytest.fixture
def rig(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], Retailer]]:
    sim_port, port = free_port(), free_port()
    config = tmp_path / "xhuma.toml"
    config.write_text(f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{sim_port}"\n' + PROCESS)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    simulator = Server(["simulate", "ppu", "--port", str(sim_port), "--seed", "5"], sim_port, env, tmp_path / "sim.log")
    xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=env)
    switch = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    yield simulator, env, Retailer(switch.url, "till", "pw", "r1")
    switch.stop()
    simulator.stop()


def recon(env: dict[str, str], *args: str) -> str:
    return xhuma("recon", *args, "--process", "sim-ppu", env=env).stdout


def listed(env: dict[str, str], day: str, status: str | None = None) -> list[dict[str, Any]]:
    out = recon(env, "list", "--date", day, *(("--status", status) if status else ()), "--json")
    return [json.loads(line) for line in out.splitlines()]


def purchases_and_extract(
    simulator: Server, till: Retailer, folder: Path
) -> tuple[date, Path, dict[str, list[str]], list[str]]:
    """Eight purchases through the switch, and the simulator's extract of today with one missing,
    one extra, one amount (3 cents) and one time (600 s) discrepancy: the day, the file, what was
    injected (by reference) and the purchases' retail ids."""
    bought = []
    for n in range(8):
        purchase, answer = till.purchase(f"1234567890{n}", 5000 + 100 * n)
        assert answer.status_code == 201, answer.text
        bought.append(purchase["id"])
    today = datetime.now(ZoneInfo(ZONE)).date()
    query = {
        "date": today.isoformat(),
        "tz": ZONE,
        "seed": "11",
        "missing": "1",
        "extra": "1",
        "amount_diff": "1",
        "diff_cents": "3",
        "time_shift": "1",
        "shift_seconds": "600",
    }
    answer = httpx.get(simulator.url + "/_sim/extract", params=query)
    assert answer.status_code == 200, answer.text
    injected = json.loads(answer.headers["X-Sim-Injected"])
    name = answer.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert name.startswith(f"SIM_XHUMA_EXTRACT_PPU_SWITCH_{today:%Y%m%d}_")
    extract = folder / name
    extract.write_bytes(answer.content)
    assert len(answer.text.splitlines()) == 1 + 8 - 1 + 1
    return today, extract, injected, bought


def test_a_day_of_purchases_against_the_simulator_extract(
    rig: tuple[Server, dict[str, str], Retailer], tmp_path: Path
) -> None:
    simulator, env, till = rig
    today, extract, injected, bought = purchases_and_extract(simulator, till, tmp_path)

    assert "8 records" in xhuma("recon", "load", str(extract), "--process", "sim-ppu", env=env).stdout
    recon(env, "run", "--date", today.isoformat())
    summary = json.loads(recon(env, "summary", "--date", today.isoformat(), "--json"))
    assert summary["matched"]["count"] == 5, summary
    assert summary["auto_resolved"]["count"] == 1 and summary["auto_resolved"]["difference"] == 3
    assert summary["partially_matched"]["count"] == 1 and summary["partially_matched"]["difference"] == 0
    assert summary["unmatched_ours"]["count"] == 1 and summary["unmatched_theirs"]["count"] == 1
    assert summary["expired"]["count"] == 0
    assert summary["records"] == {"ours": 8, "theirs": 8}

    day = today.isoformat()
    [missing] = listed(env, day, "unmatched_ours")
    assert [missing["record_id"]] == injected["missing"] and missing["missing"] == "theirs"
    [extra] = listed(env, day, "unmatched_theirs")
    assert [extra["reference"]] == injected["extra"]
    auto = {r["reference"]: r for r in listed(env, day, "auto_resolved")}
    assert set(auto) == set(injected["amount_diff"])
    assert all(r["differences"] == {"amount": 3} and r["resolution"] == "auto: in favour of sim" for r in auto.values())
    partial = {r["reference"]: r for r in listed(env, day, "partially_matched")}
    assert set(partial) == set(injected["time_shift"])
    # ten minutes (give or take the second the extract's times are written to) past a 300 s drift
    assert all(set(r["differences"]) == {"time"} and r["rule"] == "exact" for r in partial.values())
    assert all(abs(r["differences"]["time"] - 600) <= 1 for r in partial.values())
    matched = {r["record_id"] for r in listed(env, day, "matched") if r["side"] == "ours" and not r["resolution"]}
    ours = {r["record_id"] for r in listed(env, day) if r["side"] == "ours"}  # our ids, as sent upstream
    assert len(ours) == 8 and not ours & set(bought)
    untouched = ours - {ref for refs in injected.values() for ref in refs}
    assert matched == untouched and len(untouched) == 5

    later = (today + timedelta(days=2)).isoformat()  # expiry_days = 2
    recon(env, "run", "--date", later)
    expired = json.loads(recon(env, "summary", "--date", later, "--json"))["expired"]
    assert expired["ours"] == 1 and expired["theirs"] == 1
    assert {r["reference"] for r in listed(env, later, "expired")} == {*injected["missing"], *injected["extra"]}
    again = xhuma("recon", "load", str(extract), "--process", "sim-ppu", env=env, check=False)
    assert again.returncode == 1 and "refused" in again.stderr
