"""`xhuma recon` as an operator runs it, in its own process, on both backends: a malformed file
refused whole with every bad line named, a duplicate refused, and a day run and summarised."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import process_env, xhuma
from tests.test_finance_config import PROCESS, PROVIDER

NAME = "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260101_1767225600.csv"
HEADER = "reference,amount_cents,time,type,meter\n"


def test_load_run_summary_and_list(fresh_database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "xhuma.toml"
    config.write_text(PROVIDER + PROCESS)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    bad = tmp_path / NAME
    bad.write_text(HEADER + "a,100,2026-01-01T10:00:00Z,purchase,\nb,1.5,2026-01-01T10:00:00Z,purchase,\nc,5\n")
    refused = xhuma("recon", "load", str(bad), "--process", "sim-ppu", env=env, check=False)
    assert refused.returncode == 1
    assert f"{NAME}:3: amount: '1.5' is not a whole number of cents: b,1.5," in refused.stderr
    assert f"{NAME}:4: 2 columns, the header has 5: c,5" in refused.stderr
    assert "ERROR: 2 bad line(s); nothing was loaded" in refused.stderr

    bad.write_text(HEADER + "a,100,2026-01-01T10:00:00Z,purchase,\nb,150,2026-01-01T10:00:00Z,purchase,\n")
    loaded = xhuma("recon", "load", str(bad), "--process", "sim-ppu", env=env)
    assert "LOADED" in loaded.stdout and "2 records, 2.50" in loaded.stdout
    again = xhuma("recon", "load", str(bad), "--process", "sim-ppu", env=env, check=False)
    assert again.returncode == 1 and "refused: the same content" in again.stderr
    files = [
        json.loads(line)
        for line in xhuma("recon", "files", "--process", "sim-ppu", "--json", env=env).stdout.splitlines()
    ]
    assert [f["status"] for f in files] == ["ERROR", "LOADED"]

    xhuma("recon", "run", "--process", "sim-ppu", "--date", "2026-01-01", env=env)
    summary = json.loads(
        xhuma("recon", "summary", "--process", "sim-ppu", "--date", "2026-01-01", "--json", env=env).stdout
    )
    assert summary["unmatched_theirs"] == {"count": 2, "amount": 250}
    assert summary["matched"]["count"] == 0 and summary["unmatched_ours"]["count"] == 0
    listed = xhuma(
        "recon",
        "list",
        "--process",
        "sim-ppu",
        "--date",
        "2026-01-01",
        "--status",
        "unmatched_theirs",
        "--json",
        env=env,
    )
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["reference"] for r in rows) == ["a", "b"] and {r["missing"] for r in rows} == {"ours"}

    unknown = xhuma("recon", "run", "--process", "nope", "--date", "2026-01-01", env=env, check=False)
    assert unknown.returncode == 2 and "no reconciliation process 'nope' (sim-ppu)" in unknown.stderr
