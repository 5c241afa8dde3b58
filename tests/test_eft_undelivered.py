"""EFT messages the bank did not take, in process on both databases: the window closing on
what it never acknowledged or reported on."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import update

from xhuma.eft.delivery import close_window, release_due
from xhuma.eft.intake import exceptions, ingest, transactions
from xhuma.storage.db import Database
from xhuma.storage.tables import eft_transactions

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "eft"


def _states(db: Database, file_id: int) -> list[str]:
    return [r["state"] for r in transactions(db.engine, file_id)]


def test_the_window_closes_on_what_the_bank_never_acknowledged(db: Database) -> None:
    mixed = ingest(db.engine, SAMPLES / "payments-mixed-20.eft")
    assert db.run_sync(release_due("http://bank", "250655")) == 20
    rows = transactions(db.engine, mixed.file_id)
    acknowledged = {rows[0]["tx_id"], rows[1]["tx_id"]}
    with db.engine.begin() as conn:
        conn.execute(
            update(eft_transactions).where(eft_transactions.c.tx_id.in_(acknowledged)).values(state="acknowledged")
        )
    assert db.run_sync(close_window(3600 * 10**6)) == 0  # not yet: the window is an hour
    assert exceptions(db.engine) == []
    time.sleep(0.01)
    assert db.run_sync(close_window(0)) == 20
    raised = exceptions(db.engine)
    reasons = {r["message_id"]: r["reason"] for r in raised}
    assert len(raised) == 20 and {r["file_id"] for r in raised} == {mixed.file_id}
    for row in rows:
        expected = "eft_no_status_report" if row["tx_id"] in acknowledged else "eft_not_acknowledged"
        assert reasons[row["message_id"]] == expected
    assert set(_states(db, mixed.file_id)) == {"exception"}
    assert db.run_sync(close_window(0)) == 0  # closing again finds nothing new
    assert len(exceptions(db.engine)) == 20
