"""The README's demo as a user runs it, and the simulator's token layout."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.support import free_port, process_env
from xhuma.simulators.tokens import MeterTokenIssuer, make_token, token_identifier, verify_token


def test_demo_runs_a_purchase_through_the_switch_and_prints_the_slip(tmp_path: Path) -> None:
    env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    env.pop("XHUMA_CONFIG", None)
    port, sim_port, voucher_port = free_port(), free_port(), free_port()
    ports = ["--port", str(port), "--simulator-port", str(sim_port), "--voucher-port", str(voucher_port)]
    result = subprocess.run(
        [sys.executable, "-m", "xhuma", "demo", "--once", *ports],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "token purchase HTTP 201" in result.stdout and "confirmation   HTTP 202" in result.stdout
    (grouped,) = re.findall(r"^\s+(\d{4} \d{4} \d{4} \d{4} \d{4})\s*$", result.stdout, re.MULTILINE)
    assert verify_token(grouped.replace(" ", ""))
    assert f"http://127.0.0.1:{port}/openapi.json" in result.stdout
    assert "voucher issue  HTTP 201  Gift card R100 (by product)" in result.stdout
    assert "voucher issue  HTTP 201  R75 voucher (by receiver)" in result.stdout
    assert re.search(r"^voucher\s+\d{16} \(serial VOUCHERS\d{10}\)", result.stdout, re.MULTILINE)
    reference = re.search(r"xhuma tx show (\S+)", result.stdout)
    assert reference is not None
    shown = subprocess.run(
        [sys.executable, "-m", "xhuma", "tx", "show", reference.group(1), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"state":"confirmed"' in shown.stdout


@given(st.floats(min_value=0, max_value=100_000, allow_nan=False), st.integers(min_value=0, max_value=2**32))
def test_tokens_have_twenty_digits_and_a_valid_crc(units: float, seed: int) -> None:
    token = make_token(units, random.Random(seed))
    assert len(token) == 20 and token.isdigit() and verify_token(token)


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=65))
def test_any_single_bit_error_is_detected(seed: int, bit: int) -> None:
    token = make_token(12.5, random.Random(seed))
    corrupted = f"{int(token) ^ (1 << bit):020d}"
    assert not verify_token(corrupted)


@given(st.integers(min_value=0, max_value=2**24 - 1), st.integers(min_value=0, max_value=2**32))
def test_a_token_carries_the_identifier_it_was_made_with(tid: int, seed: int) -> None:
    assert token_identifier(make_token(5.0, random.Random(seed), tid=tid)) == tid


def test_one_meter_gets_strictly_increasing_identifiers_and_other_meters_their_own() -> None:
    issuer, rng = MeterTokenIssuer(), random.Random(1)
    first = [token_identifier(issuer.issue("M1", 1.0, rng)) for _ in range(50)]
    assert first == sorted(set(first)) and len(first) == 50
    assert token_identifier(issuer.issue("M2", 1.0, rng)) < first[-1]
