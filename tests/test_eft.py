"""EFT files: the layout's checks on the shared samples and on every kind of corruption, a
fuzz test of the checker, and intake through the CLI on both databases."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import process_env, xhuma
from xhuma.eft.check import FileCheck, check_file
from xhuma.eft.layout import kind_of
from xhuma.eft.records import RecordError, format_record, parse_record
from xhuma.eft.writer import random_sets, write_payments

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "eft"
MIXED = SAMPLES / "payments-mixed-20.eft"


def _lines() -> list[str]:
    return MIXED.read_text().splitlines()


def _check_text(text: str | bytes) -> None:
    checker = FileCheck()
    for raw in (text.encode() if isinstance(text, str) else text).splitlines(keepends=True):
        checker.feed(raw)
    checker.finish()


def _with(line: int, start: int, value: str) -> str:
    lines = _lines()
    record = lines[line - 1]
    lines[line - 1] = record[: start - 1] + value + record[start - 1 + len(value) :]
    return "\n".join(lines) + "\n"


def test_the_samples_check_as_their_readme_says() -> None:
    for name in ("payments-mixed-20.eft", "payments-sameday-credits-12.eft", "sec-for-payments-mixed-20.eft"):
        assert check_file(str(SAMPLES / name)).records > 0
    with pytest.raises(RecordError) as bad:
        check_file(str(SAMPLES / "invalid-bad-hash-total.eft"))
    assert str(bad.value) == "line 27, field hash total (77-88): says 377116343026, the records give 377116343025"


def test_every_sample_record_formats_back_to_itself() -> None:
    for path in SAMPLES.glob("*.eft"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            kind = kind_of(line)
            assert kind is not None
            assert format_record(kind, parse_record(kind, line, number)) == line


def _trailer_line() -> int:
    return next(i for i, line in enumerate(_lines(), start=1) if line.startswith("001T92"))


def _first(prefix: str) -> int:
    return next(i for i, line in enumerate(_lines(), start=1) if line.startswith(prefix))


CORRUPTIONS = {
    "credit total": (lambda: _with(_trailer_line(), 65, "000000000001"), "credit total (65-76)"),
    "debit count": (lambda: _with(_trailer_line(), 35, "000009"), "debit count (35-40)"),
    "record count": (lambda: _with(len(_lines()), 5, "000000099"), "record count (5-13)"),
    "truncated": (lambda: "\n".join(_lines()[:-3]) + "\n", "line 41"),
    "cut mid-record": (lambda: MIXED.read_text()[:-100], "line 43"),
    "bad date": (lambda: _with(_first("001T10"), 63, "251332"), "action date (63-68)"),
    "non-ASCII": (lambda: _with(_first("001T10"), 105, "\u00e9"), "column 105"),
    "short line": (lambda: MIXED.read_text().replace(_lines()[3], _lines()[3][:-1]), "179 characters"),
    "CR before LF": (lambda: MIXED.read_text().replace("\n", "\r\n", 1), "column 181"),
    "duplicate sequence": (
        lambda: _with(_first("001T10") + 1, 28, _lines()[_first("001T10") - 1][27:33]),
        "duplicate sequence number",
    ),
    "data status": (lambda: _with(_first("001T10"), 4, "L"), "data status (4-4)"),
    "unknown service": (lambda: _with(_first("001T04"), 45, "NEXT WEEK "), "service type (45-54)"),
    "entry class": (lambda: _with(_first("001T10"), 69, "44"), "entry class (69-70)"),
    "contra amount": (lambda: _with(_first("001T12"), 52, "00000000001"), "amount (52-62)"),
    "filler": (lambda: _with(_first("001T10"), 170, "X"), "filler 2 (155-180)"),
    "nothing after trailer": (lambda: MIXED.read_text() + _lines()[-1] + "\n", "line 44"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_rejected_naming_line_and_field(name: str) -> None:
    make, expected = CORRUPTIONS[name]
    with pytest.raises(RecordError) as refused:
        _check_text(make())
    assert str(refused.value).startswith("line ") and expected in str(refused.value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 7782), st.binary(min_size=1, max_size=3)), min_size=1, max_size=4), st.booleans()
)
def test_the_checker_never_fails_but_with_a_record_error(edits: list[tuple[int, bytes]], cut: bool) -> None:
    data = bytearray(MIXED.read_bytes())
    for offset, value in edits:
        data[offset : offset + len(value)] = value
    if cut:
        del data[edits[0][0] :]
    try:
        _check_text(bytes(data))
    except RecordError as exc:
        assert str(exc).startswith("line ")


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 1500), st.integers(50, 700))
def test_written_files_check_clean(records: int, per_set: int) -> None:
    day = date(2026, 11, 23)
    out = io.StringIO()
    count = write_payments(
        out,
        list(random_sets(records, action_date=day, per_set=per_set)),
        created=day,
        sender=9,
        destination=4,
        number=1,
    )
    checker = FileCheck()
    for line in out.getvalue().encode().splitlines(keepends=True):
        checker.feed(line)
    summary = checker.finish()
    assert (summary.records, summary.transactions) == (count, records)


def test_intake_takes_a_file_once_and_refuses_bad_ones_whole(fresh_database_url: str, tmp_path: Path) -> None:
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    env.pop("XHUMA_CONFIG", None)
    accepted = xhuma("eft", "ingest", str(MIXED), env=env)
    assert "accepted as file 1: 20 transactions in 5 sets" in accepted.stdout
    again = xhuma("eft", "ingest", str(MIXED), env=env, check=False)
    assert again.returncode == 1 and "duplicate" in again.stdout
    renamed = tmp_path / "resent.eft"
    renamed.write_text(_with(1, 46, "0001999"))  # the same sets under a new transmission number
    resent = xhuma("eft", "ingest", str(renamed), env=env, check=False)
    assert resent.returncode == 1 and "was already accepted" in resent.stdout
    broken = tmp_path / "broken.eft"
    broken.write_text(
        (SAMPLES / "payments-sameday-credits-12.eft").read_text().replace("WAGES 2503", "WAGES 25\u00e903")
    )
    refused = xhuma("eft", "ingest", str(broken), env=env, check=False)
    assert refused.returncode == 1 and "line 4, field user reference (75-104), column" in refused.stdout
    files = [json.loads(line) for line in xhuma("eft", "files", "--json", env=env).stdout.splitlines()]
    assert [f["state"] for f in files] == ["rejected", "rejected", "redelivered", "accepted"]
    stored = xhuma("eft", "transactions", "--file", "1", "--json", env=env).stdout.splitlines()
    assert len(stored) == 20
    assert xhuma("eft", "transactions", "--file", "4", "--json", env=env).stdout == ""
    sec = xhuma("eft", "ingest", str(SAMPLES / "sec-for-payments-mixed-20.eft"), env=env)
    assert "4 transactions" in sec.stdout


def test_files_arrive_through_the_inbox_and_the_upload_endpoint(fresh_database_url: str, tmp_path: Path) -> None:
    import shutil
    import time

    import httpx

    from tests.support import Server, free_port

    inbox = tmp_path / "inbox"
    config = tmp_path / "xhuma.toml"
    config.write_text(f'[eft]\ninbox = "{inbox}"\nrelease_seconds = 0.3\n')
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    xhuma(
        "clients", "add", "--username", "ops", "--password", "ops-pw", "--client-id", "ops", "--role", "admin", env=env
    )
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    try:
        inbox.mkdir(exist_ok=True)
        for source, name in (("payments-sameday-credits-12.eft", "today"), ("invalid-bad-hash-total.eft", "bad")):
            shutil.copy(SAMPLES / source, inbox / f"{name}.tmp")  # written under another name, then renamed
            (inbox / f"{name}.tmp").rename(inbox / f"{name}.eft")
        deadline = time.monotonic() + 20
        while list(inbox.glob("*.eft")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p.name for p in (inbox / "accepted").glob("*.eft")] == ["000001-today.eft"]
        (why,) = (inbox / "refused").glob("*.why")
        assert "line 27, field hash total (77-88)" in why.read_text()
        upload = httpx.post(
            f"{server.url}/admin/eft/files",
            params={"name": "mixed.eft"},
            content=MIXED.read_bytes(),
            auth=("ops", "ops-pw"),
        )
        assert upload.status_code == 201 and upload.json()["transactions"] == 20
        again = httpx.post(f"{server.url}/admin/eft/files", content=MIXED.read_bytes(), auth=("ops", "ops-pw"))
        assert again.status_code == 409 and again.json()["state"] == "redelivered"
        assert httpx.post(f"{server.url}/admin/eft/files", content=b"x").status_code == 401
    finally:
        server.stop()


def test_an_eft_only_node_has_no_phantom_provider_and_starts(fresh_database_url: str, tmp_path: Path) -> None:
    """A configuration file names its providers: one that names none (an EFT-only node) gets
    none, not a default PPU provider on 127.0.0.1:8090 that every purchase would be sent to."""
    import asyncio

    from tests.support import base_message
    from xhuma.config import load_settings
    from xhuma.node import Node
    from xhuma.ppu import operations as ops

    config = tmp_path / "xhuma.toml"
    config.write_text(f'[switch]\ndatabase_url = "{fresh_database_url}"\n\n[eft]\nbank_url = "http://127.0.0.1:9"\n')
    settings = load_settings(config)
    assert settings.providers == ()
    message = base_message("c1", meter={"meterId": "01234567890"}, purchaseAmount={"amount": 100, "currency": "710"})

    async def run() -> tuple[int, dict[str, object]]:
        node = Node(settings, run_worker=True)
        await node.start()
        try:
            reply = await node.switch.handle(
                ops.PURCHASE, "c1", {"id": message["id"]}, json.dumps(message).encode(), "/tokenPurchases"
            )
            return reply.status, json.loads(reply.body)
        finally:
            await node.stop()

    status, body = asyncio.run(run())
    assert status == 400 and body["errorType"] == "UNKNOWN_METER_ID"
