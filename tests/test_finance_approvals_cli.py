"""Maker-checker, settlement and posting as operators run them, in their own processes, on both
backends: `xhuma finance` on the command line (`--as`), and /admin/finance on a real
`xhuma serve` (the authenticated credential), each refusing self-approval and a non-approver."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support import Server, free_port, process_env, xhuma
from tests.test_finance_config import PROCESS, PROVIDER
from tests.test_finance_settlement import DAY, FEES, their_line
from tests.test_finance_store import HEADER, journal
from xhuma.config import load_settings
from xhuma.finance.processes import Process
from xhuma.storage.db import Database, migrate

NAME = "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260105_1767571200.csv"


@pytest.fixture
def day(fresh_database_url: str, tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    """Three purchases of the day in the journal, their file, bob an approver, carol a maker."""
    config = tmp_path / "xhuma.toml"
    config.write_text(PROVIDER + PROCESS + FEES)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    for user, role in (("bob", "approver"), ("carol", "finance")):
        xhuma(
            "clients",
            "add",
            "--username",
            user,
            "--password",
            f"{user}-pw",
            "--client-id",
            "ops",
            "--role",
            role,
            env=env,
        )
    process = load_settings(config).process("sim-ppu")
    assert isinstance(process, Process)
    db = Database(fresh_database_url)
    migrate(db.engine)
    amounts = ((9, 10000), (10, 25000), (11, 5000))
    try:
        ids = [journal(db, process, DAY, amount, hour=hour) for hour, amount in amounts]
    finally:
        db.close()
    extract = tmp_path / NAME
    extract.write_bytes(
        HEADER + b"".join(their_line(process, DAY, h, i, a) for i, (h, a) in zip(ids, amounts, strict=True))
    )
    loaded = xhuma("recon", "load", str(extract), "--process", "sim-ppu", env=env)
    file_id = re.search(r"as file (\S+):", loaded.stdout).group(1)  # type: ignore[union-attr]
    xhuma("recon", "run", "--process", "sim-ppu", "--date", str(DAY), env=env)
    return env, tmp_path, file_id


def test_settle_approve_and_post_on_the_command_line(day: tuple[dict[str, str], Path, str]) -> None:
    env, folder, file_id = day
    settle = xhuma(
        "finance", "settle", "--counterparty", "sim", "--from", str(DAY), "--to", str(DAY), "--as", "alice", env=env
    )
    approval_id = re.search(r"approval (\S+): settlement of (\S+) proposed by alice", settle.stdout)
    assert approval_id is not None and "net 393.75: xhuma pays sim" in settle.stdout
    approval, settlement_id = approval_id.groups()
    mine = xhuma("finance", "approve", approval, "--note", "mine", "--as", "alice", env=env, check=False)
    assert mine.returncode == 1 and "alice proposed approval" in mine.stderr and "cannot decide it too" in mine.stderr
    maker = xhuma("finance", "approve", approval, "--note", "ok", "--as", "carol", env=env, check=False)
    assert maker.returncode == 1 and "carol may not decide approvals" in maker.stderr
    early = xhuma("finance", "post", settlement_id, "--out", str(folder / "gl.csv"), env=env, check=False)
    assert early.returncode == 1 and "is DRAFT: only an APPROVED one is posted" in early.stderr
    [pending] = [json.loads(x) for x in xhuma("finance", "approvals", "--json", env=env).stdout.splitlines()]
    assert (pending["id"], pending["maker"], pending["status"]) == (approval, "alice", "pending")

    approved = xhuma("finance", "approve", approval, "--note", "agrees with the statement", "--as", "bob", env=env)
    assert "approved by bob" in approved.stdout
    files = [
        json.loads(x)
        for x in xhuma("recon", "files", "--process", "sim-ppu", "--json", env=env).stdout.split("\n")
        if x
    ]
    assert [f["status"] for f in files] == ["FINALIZED"]
    again = xhuma(
        "finance", "settle", "--counterparty", "sim", "--from", str(DAY), "--to", str(DAY), env=env, check=False
    )
    assert again.returncode == 1 and "nothing to settle" in again.stderr
    rollback = xhuma("finance", "propose", "rollback", "--file", file_id, "--note", "x", env=env, check=False)
    assert rollback.returncode == 1 and "FINALIZED: only a LOADED file can be rolled back" in rollback.stderr

    out = folder / "gl.csv"
    posted = xhuma("finance", "post", settlement_id, "--out", str(out), env=env)
    assert "debits 400.75 = credits 400.75" in posted.stdout
    rows = list(csv.DictReader(out.open()))
    debits = sum(Decimal(r["debit"] or "0") for r in rows)
    credits = sum(Decimal(r["credit"] or "0") for r in rows)
    assert debits == credits == Decimal("400.75")
    assert [(r["account"], r["debit"], r["credit"]) for r in rows] == [
        ("2100-SIM", "400.00", ""),
        ("4100-SIM", "", "7.00"),
        ("4100-SIM", "0.75", ""),
        ("1100-BANK", "", "393.75"),
    ]
    assert xhuma("audit", "verify", env=env).returncode == 0
    entries = [json.loads(x) for x in xhuma("audit", "list", "--json", env=env).stdout.splitlines()]
    approve_entry = next(e for e in entries if e["action"] == "finance.approve")
    assert approve_entry["actor"] == "bob" and json.loads(approve_entry["before"])["status"] == "DRAFT"
    assert json.loads(approve_entry["after"]) == {"status": "APPROVED", "net": 39375, "settled": 6}


@pytest.fixture
def served(day: tuple[dict[str, str], Path, str]) -> Iterator[tuple[Server, str]]:
    env, folder, file_id = day
    xhuma(
        "clients",
        "add",
        "--username",
        "dave",
        "--password",
        "dave-pw",
        "--client-id",
        "ops",
        "--role",
        "approver",
        env=env,
    )
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, folder / "switch.log")
    yield server, file_id
    server.stop()


def test_the_admin_api_proposes_as_the_caller_and_approves_only_by_another_approver(
    served: tuple[Server, str],
) -> None:
    server, file_id = served
    url = server.url + "/admin/finance/approvals"
    missing = httpx.post(url, json={"kind": "rollback", "note": "wrong file"}, auth=("carol", "carol-pw"))
    assert missing.status_code == 400 and missing.json() == {
        "error": "file: required to propose rollback",
        "field": "file",
    }
    made = httpx.post(url, json={"kind": "rollback", "note": "wrong file", "file": file_id}, auth=("bob", "bob-pw"))
    assert made.status_code == 201 and made.json()["maker"] == "bob"
    approval = made.json()["id"]
    assert [a["id"] for a in httpx.get(url, auth=("carol", "carol-pw")).json()] == [approval]
    not_checker = httpx.post(f"{url}/{approval}/approve", json={"note": "ok"}, auth=("carol", "carol-pw"))
    assert not_checker.status_code == 403
    own = httpx.post(f"{url}/{approval}/approve", json={"note": "ok"}, auth=("bob", "bob-pw"))
    assert own.status_code == 403 and "cannot decide it too" in own.json()["error"]
    no_note = httpx.post(f"{url}/{approval}/approve", json={}, auth=("dave", "dave-pw"))
    assert no_note.status_code == 400 and no_note.json()["field"] == "note"
    done = httpx.post(f"{url}/{approval}/approve", json={"note": "agreed with sim"}, auth=("dave", "dave-pw"))
    assert done.status_code == 200 and done.json()["checker"] == "dave"
    assert done.json()["outcome"] == {"file": file_id, "status": "ROLLBACK", "removed": 3, "unmatched_again": 3}
    twice = httpx.post(f"{url}/{approval}/reject", json={"note": "no"}, auth=("dave", "dave-pw"))
    assert twice.status_code == 409 and "approved already" in twice.json()["error"]
    audit = httpx.get(server.url + "/admin/audit/verify", auth=("bob", "bob-pw"))
    assert audit.status_code == 403  # the audit log is the admin role's
