"""Gaps and repeats in a sender's EFT transmission numbers (layout §9): the rule on its own,
intake raising them as exceptions on both databases, and the operator's listing."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

from tests.support import process_env, xhuma
from xhuma.domain.eft_transmissions import GAP, REPEAT, TransmissionKey, judge_transmission
from xhuma.eft.intake import exceptions, ingest, transactions
from xhuma.eft.writer import random_sets, write_payments
from xhuma.storage.db import Database
from xhuma.storage.journal import open_file_exception

SENDER, DESTINATION = 9000, 45001


def _payments(folder: Path, number: int, *, sender: int = SENDER, day: int = 0, records: int = 3) -> Path:
    """A valid PAYMENTS file of `records` credits and debits; `day` makes its sets new."""
    created = date(2026, 11, 2) + timedelta(days=day)
    out = io.StringIO()
    sets = list(random_sets(records, action_date=created, seed=day + 1, per_set=records))
    write_payments(out, sets, created=created, sender=sender, destination=DESTINATION, number=number)
    path = folder / f"payments-{sender}-{number}-{day}.eft"
    path.write_text(out.getvalue())
    return path


def _key(number: int, sender: int = SENDER) -> TransmissionKey:
    return TransmissionKey(sender, DESTINATION, "T", number)


def test_the_transmission_rule() -> None:
    assert judge_transmission(_key(5), last_seen=None, used_by=None) is None  # a stream's first file
    assert judge_transmission(_key(6), last_seen=5, used_by=None) is None
    assert judge_transmission(_key(3), last_seen=5, used_by=None) is None  # a late file fills a gap
    gap = judge_transmission(_key(9), last_seen=6, used_by=None)
    assert gap is not None and gap.reason == GAP and not gap.refuse
    assert gap.detail == "transmission 09000/45001/T/0000009 follows 0000006 of its stream: 0000007 to 0000008 missing"
    one = judge_transmission(_key(8), last_seen=6, used_by=None)
    assert one is not None and one.detail.endswith(": 0000007 missing")
    repeat = judge_transmission(_key(6), last_seen=9, used_by=2)
    assert repeat is not None and repeat.reason == REPEAT and repeat.refuse
    assert repeat.detail == "transmission 09000/45001/T/0000006 was already used by file 2"
    assert str(TransmissionKey.parse("09000/45001/T/0001001")) == "09000/45001/T/0001001"


def test_a_gap_raises_an_exception_and_the_file_is_still_taken(db: Database, tmp_path: Path) -> None:
    engine = db.engine
    assert ingest(engine, _payments(tmp_path, 5, day=0)).finding is None
    assert ingest(engine, _payments(tmp_path, 6, day=1)).finding is None
    assert exceptions(engine) == []

    gapped = ingest(engine, _payments(tmp_path, 9, day=2))
    assert gapped.state == "accepted" and gapped.finding is not None and gapped.finding.reason == GAP
    assert len(transactions(engine, gapped.file_id)) == 3  # processed all the same
    (raised,) = exceptions(engine)
    assert (raised["reason"], raised["file_id"], raised["line"]) == (GAP, gapped.file_id, None)
    assert "0000007 to 0000008 missing" in raised["detail"]

    # A late file fills the gap, another sender's first file starts its own stream, and a file
    # that breaks a rule is refused before its number counts: none raises anything.
    assert ingest(engine, _payments(tmp_path, 7, day=3)).finding is None
    assert ingest(engine, _payments(tmp_path, 400, sender=9001, day=4)).finding is None
    broken = _payments(tmp_path, 20, day=5)
    broken.write_text("".join(broken.read_text().splitlines(keepends=True)[:-1]))  # no trailer
    assert ingest(engine, broken).state == "rejected"
    assert [r["reason"] for r in exceptions(engine)] == [GAP]
    assert ingest(engine, _payments(tmp_path, 10, day=6)).finding is None  # 9 is the highest so far

    # Opening it again (a rerun) changes nothing: one open exception per file and reason.
    with engine.begin() as conn:
        open_file_exception(conn, gapped.file_id, GAP, "again")
    assert [r["detail"] for r in exceptions(engine)] == [raised["detail"]]


def test_a_repeated_number_is_refused_and_raised(db: Database, tmp_path: Path) -> None:
    engine = db.engine
    first = ingest(engine, _payments(tmp_path, 6, day=0))
    again = ingest(engine, _payments(tmp_path, 6, day=1))  # the same number, other content
    assert again.state == "rejected" and again.reason == f"transmission {_key(6)} was already used by file 1"
    assert transactions(engine, again.file_id) == []
    (raised,) = exceptions(engine)
    assert (raised["reason"], raised["file_id"]) == (REPEAT, again.file_id)
    assert raised["detail"] == again.reason
    redelivered = ingest(engine, _payments(tmp_path, 6, day=0))  # the very same file: no exception
    assert redelivered.state == "redelivered" and redelivered.finding is None
    assert [r["file_id"] for r in exceptions(engine)] == [again.file_id] and first.state == "accepted"


def test_the_operator_sees_them_in_xhuma_eft_exceptions(fresh_database_url: str, tmp_path: Path) -> None:
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    env.pop("XHUMA_CONFIG", None)
    xhuma("eft", "ingest", str(_payments(tmp_path, 1, day=0)), env=env)
    gapped = xhuma("eft", "ingest", str(_payments(tmp_path, 4, day=1)), env=env)
    assert "accepted as file 2" in gapped.stdout and f"exception {GAP}" in gapped.stdout
    repeated = xhuma("eft", "ingest", str(_payments(tmp_path, 4, day=2)), env=env, check=False)
    assert repeated.returncode == 1 and "was already used by file 2" in repeated.stdout
    rows = [json.loads(line) for line in xhuma("eft", "exceptions", "--json", env=env).stdout.splitlines()]
    assert [(r["reason"], r["file_id"]) for r in rows] == [(GAP, 2), (REPEAT, 3)]
    table = xhuma("eft", "exceptions", env={**env, "COLUMNS": "400"}).stdout
    assert GAP in table and REPEAT in table
