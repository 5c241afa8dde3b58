"""xhuma's own SWITCH extract, through real processes on both backends: a day of purchases through
`xhuma serve`, written by `xhuma recon extract` in a process's file specification (CSV, and
fixed-width), loaded back into a process against ourselves: every record matches one to one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support import Retailer, Server, free_port, process_env, xhuma
from tests.test_finance_config import PROCESS, sim_process
from xhuma.finance.extract import extract_name

ZONE = "Africa/Johannesburg"
FIXED = """
[[finance.processes]]
name = "sim-fixed"
service = "ppu"
counterparty = "sim"
time_zone = "Africa/Johannesburg"
exclude = ["declined", "unknown", "reversed"]

[finance.processes.file]
format = "fixed"
header_lines = 1
trailer_lines = 1
line_ending = "crlf"
name_pattern = "XHUMA_SIM_EXTRACT_PPU_SWITCH_YYYYMMDD_EPOCH.txt"
columns = { reference = [1, 36], amount = [37, 10], time = [47, 27], type = [74, 10], meter = [84, 13] }

[[finance.processes.rules]]
criteria = [{ field = "reference" }, { field = "amount" }, { field = "time", drift = 0 }]
"""


@pytest.fixture
def rig(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Retailer]]:
    sim_port, port = free_port(), free_port()
    config = tmp_path / "xhuma.toml"
    config.write_text(f'[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:{sim_port}"\n' + PROCESS + FIXED)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    simulator = Server(["simulate", "ppu", "--port", str(sim_port), "--seed", "5"], sim_port, env, tmp_path / "sim.log")
    xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=env)
    switch = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    yield env, Retailer(switch.url, "till", "pw", "r1")
    switch.stop()
    simulator.stop()


def test_our_extract_loaded_against_ourselves_matches_one_to_one(
    rig: tuple[dict[str, str], Retailer], tmp_path: Path
) -> None:
    env, till = rig
    for n in range(5):
        _, answer = till.purchase(f"1234567890{n}", 5000 + 100 * n)
        assert answer.status_code == 201, answer.text
    day = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    for process, suffix in (("sim-ppu", ".csv"), ("sim-fixed", ".txt")):
        written = xhuma("recon", "extract", "--process", process, "--date", day, "--out", str(tmp_path), env=env)
        path = Path(written.stdout.split(":")[0])
        assert path.name.startswith(f"{'SIM_XHUMA' if process == 'sim-ppu' else 'XHUMA_SIM'}_EXTRACT_PPU_SWITCH_")
        assert path.suffix == suffix and "5 records, 260.00" in written.stdout
        loaded = xhuma("recon", "load", str(path), "--process", process, env=env)
        assert "LOADED" in loaded.stdout and "5 records" in loaded.stdout
        xhuma("recon", "run", "--process", process, "--date", day, env=env)
        summary = json.loads(xhuma("recon", "summary", "--process", process, "--date", day, "--json", env=env).stdout)
        assert summary["matched"] == {"count": 5, "amount": 26000, "their_amount": 26000}, summary
        for name in ("partially_matched", "auto_resolved", "unmatched_ours", "unmatched_theirs", "expired"):
            assert summary[name]["count"] == 0, (process, name, summary)
        listed = xhuma("recon", "list", "--process", process, "--date", day, "--json", env=env).stdout
        rows = [json.loads(line) for line in listed.splitlines()]
        ours = {r["record_id"]: r for r in rows if r["side"] == "ours"}
        theirs = {r["record_id"]: r for r in rows if r["side"] == "theirs"}
        assert len(ours) == len(theirs) == 5
        for record in ours.values():
            [counterpart] = record["counterparts"]
            assert theirs[counterpart]["reference"] == record["record_id"]
    fixed = next(tmp_path.glob("*.txt")).read_bytes().split(b"\r\n")
    assert fixed[0].startswith(b"XHUMA SWITCH EXTRACT sim-fixed") and fixed[-2] == b"TRAILER 5 26000"
    assert len(fixed) == 1 + 5 + 1 + 1 and all(len(line) == 96 for line in fixed[1:6])


def test_the_name_is_the_process_pattern_with_switch_for_its_side(tmp_path: Path) -> None:
    import msgspec

    process = sim_process(tmp_path)
    marked = msgspec.structs.replace(
        process,
        file=msgspec.structs.replace(process.file, name_pattern="SIM_XHUMA_EXTRACT_PPU_MARKUP_YYYYMMDD_EPOCH.csv"),
    )
    day = datetime(2026, 1, 2).date()
    assert extract_name(marked, day, 1767300000) == "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260102_1767300000.csv"
