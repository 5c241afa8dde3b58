"""Inbound EFT delivered to a simulated homing bank and back, as real processes: a file taken
in is released to the bank through store-and-forward, NACKs are repeated, the bank's status
reports make transactions accepted or unpaid, and silence becomes exceptions at window close."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import Server, free_port, process_env, xhuma

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "eft"


def _rows(env: dict[str, str], file_id: int) -> list[dict[str, Any]]:
    out = xhuma("eft", "transactions", "--file", str(file_id), "--json", env=env).stdout
    return [json.loads(line) for line in out.splitlines()]


def _wait(predicate: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_a_file_flows_to_the_bank_and_back(fresh_database_url: str, tmp_path: Path) -> None:
    switch_port, bank_port = free_port(), free_port()
    config = tmp_path / "xhuma.toml"
    config.write_text(
        "[saf]\nbase_delay_seconds = 0.1\nmax_delay_seconds = 0.5\n\n"
        f'[eft]\nbank_url = "http://127.0.0.1:{bank_port}"\nbank_member_id = "250655"\n'
        "release_seconds = 0.5\nwindow_seconds = 8\nread_timeout = 2\n"
        f'outbox = "{tmp_path / "outbox"}"\noutput_seconds = 0.5\n'
    )
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    xhuma(
        "clients",
        "add",
        "--username",
        "bank",
        "--password",
        "bank-pw",
        "--client-id",
        "bank",
        "--role",
        "bank",
        env=env,
    )
    bank = Server(
        [
            "simulate",
            "bank",
            "--port",
            str(bank_port),
            "--xhuma-url",
            f"http://127.0.0.1:{switch_port}",
            "--nack-rate",
            "0.3",
            "--reject-rate",
            "0.3",
            "--seed",
            "3",
        ],
        bank_port,
        process_env(),
        tmp_path / "bank.log",
    )
    switch = Server(["serve", "--port", str(switch_port)], switch_port, env, tmp_path / "switch.log")
    try:
        xhuma("eft", "ingest", str(SAMPLES / "payments-mixed-20.eft"), env=env)
        _wait(lambda: all(r["state"] in ("accepted", "unpaid") for r in _rows(env, 1)))
        ledger = httpx.get(f"{bank.url}/_sim/ledger").json()
        rows = _rows(env, 1)
        assert len(ledger["booked"]) == 20 and all(n >= 1 for n in ledger["received"].values())
        assert sum(ledger["received"].values()) > 20, "some deliveries were NACKed and repeated"
        for row in rows:
            booked = ledger["booked"][row["message_id"]]
            assert booked["kind"] == row["kind"]
            assert row["state"] == ("unpaid" if booked["outcome"] == "REJECTED" else "accepted")
            assert row["reason_code"] == booked["reason"]
        unpaids = [json.loads(line) for line in xhuma("eft", "unpaids", "--json", env=env).stdout.splitlines()]
        assert sorted(u["message_id"] for u in unpaids) == sorted(
            r["message_id"] for r in rows if r["state"] == "unpaid"
        )
        assert unpaids, "the seed rejects some"
        outbox = tmp_path / "outbox"  # the server writes the UNPAIDS file on its own
        _wait(lambda: bool(list(outbox.glob("UNPAIDS-*.eft"))))
        (unpaid_file,) = outbox.glob("UNPAIDS-*.eft")
        checked = xhuma("eft", "check", str(unpaid_file), env=env).stdout
        assert "valid UNPAIDS file" in checked and f"{len(unpaids)} transactions" in checked
        assert xhuma("eft", "unpaids", "--write", str(outbox), env=env).stdout.strip() == "no new unpaids"
        report = {
            "messageIdentifiers": {"messageIdentification": "BKREPEAT"},
            "originalMessageIdentifiers": {"messageIdentification": unpaids[0]["message_id"]},
            "transactionIdentifiers": {"endToEndIdentification": "x"},
            "status": {"outcome": "APPROVED"},
        }
        repeat = httpx.post(f"{switch.url}/inbound/credit-transfer-response", json=report, auth=("bank", "bank-pw"))
        assert repeat.status_code == 202  # a late, contrary repeat is taken and changes nothing
        assert next(r for r in _rows(env, 1) if r["message_id"] == unpaids[0]["message_id"])["state"] == "unpaid"
        assert httpx.post(f"{switch.url}/inbound/credit-transfer-response", json=report).status_code == 401
        shown = xhuma("tx", "show", rows[0]["message_id"], "--json", env=env).stdout
        assert "inboundCreditTransfer" in shown or "inboundDirectDebit" in shown

        httpx.post(f"{bank.url}/_sim/config", json={"silent_rate": 1.0, "nack_rate": 0.0}).raise_for_status()
        xhuma("eft", "ingest", str(SAMPLES / "payments-sameday-credits-12.eft"), env=env)
        _wait(lambda: all(r["state"] == "exception" for r in _rows(env, 2)))
        raised = [json.loads(line) for line in xhuma("eft", "exceptions", "--json", env=env).stdout.splitlines()]
        assert [r["reason"] for r in raised].count("eft_no_status_report") == 12
        assert {r["file_id"] for r in raised if r["reason"] == "eft_no_status_report"} == {2}
    finally:
        switch.stop()
        bank.stop()


def test_system_error_corrections_return_originals_or_fail_into_secfail(
    fresh_database_url: str, tmp_path: Path
) -> None:
    switch_port, bank_port = free_port(), free_port()
    config = tmp_path / "xhuma.toml"
    config.write_text(
        "[saf]\nbase_delay_seconds = 0.1\nmax_delay_seconds = 0.5\n\n"
        f'[eft]\nbank_url = "http://127.0.0.1:{bank_port}"\nrelease_seconds = 0.5\nread_timeout = 2\n'
    )
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    xhuma(
        "clients",
        "add",
        "--username",
        "bank",
        "--password",
        "bank-pw",
        "--client-id",
        "bank",
        "--role",
        "bank",
        env=env,
    )
    bank = Server(
        ["simulate", "bank", "--port", str(bank_port), "--xhuma-url", f"http://127.0.0.1:{switch_port}", "--seed", "5"],
        bank_port,
        process_env(),
        tmp_path / "bank.log",
    )
    switch = Server(["serve", "--port", str(switch_port)], switch_port, env, tmp_path / "switch.log")
    outbox = tmp_path / "outbox"
    try:
        xhuma("eft", "ingest", str(SAMPLES / "payments-mixed-20.eft"), env=env)
        _wait(lambda: all(r["state"] == "accepted" for r in _rows(env, 1)))
        xhuma("eft", "ingest", str(SAMPLES / "sec-for-payments-mixed-20.eft"), env=env)
        _wait(lambda: all(r["state"] == "unpaid" for r in _rows(env, 2)))
        corrected = {r["line"] for r in _rows(env, 1) if r["state"] == "corrected"}
        assert len(corrected) == 4
        returns = [m for m, b in httpx.get(f"{bank.url}/_sim/ledger").json()["booked"].items() if b["kind"] == "return"]
        assert len(returns) == 4
        xhuma("eft", "unpaids", "--write", str(outbox), env=env)
        (unpaids,) = outbox.glob("UNPAIDS-*.eft")
        assert "4 transactions" in xhuma("eft", "check", str(unpaids), env=env).stdout

        # The same corrections again, re-sent as another file: the originals are already corrected.
        lines = (SAMPLES / "sec-for-payments-mixed-20.eft").read_text().splitlines()
        lines[0] = lines[0][:45] + "0001777" + lines[0][52:]
        lines[1] = lines[1][:40] + "3020" + lines[1][44:]
        again = tmp_path / "sec-again.eft"
        again.write_text("\n".join(lines) + "\n")
        xhuma("eft", "ingest", str(again), env=env)
        _wait(lambda: all(r["state"] == "sec_failed" for r in _rows(env, 3)))
        assert {r["failure_code"] for r in _rows(env, 3)} == {"104"}
        written = xhuma("eft", "secfail", "--write", str(outbox), env=env).stdout
        (secfail,) = outbox.glob("SECFAIL-*.eft")
        assert secfail.name in written and secfail.name.endswith("0000002.eft")
        assert "valid SECFAIL file" in xhuma("eft", "check", str(secfail), env=env).stdout
        assert all(line[62:65] == "104" for line in secfail.read_text().splitlines() if line.startswith("023"))
    finally:
        switch.stop()
        bank.stop()
