"""P4: an EFT file of N records checked whole and stored, beside a plain bulk insert of the same
rows (no checking at all), each in its own process on a fresh database, with each process's
peak memory.

    python -m bench.p4_eft [--records 1000000] [--database-url postgresql://127.0.0.1:5432/test]

Without --database-url both run on fresh SQLite files."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert

from bench.common import env
from xhuma.eft.intake import BATCH, ingest
from xhuma.eft.writer import random_sets, write_payments
from xhuma.storage.db import bulk_insert, make_engine, migrate
from xhuma.storage.tables import eft_files, eft_transactions


def _plain_rows(path: Path) -> Any:
    """The rows intake would store, sliced straight out of the records: no checks."""
    for line in path.open("rb"):
        if line[:6] in (b"001T10", b"001T50"):
            text = line.decode("ascii")
            yield {
                "file_id": 1,
                "line": 0,
                "kind": "credit" if text[4:6] == "10" else "debit",
                "user_code": text[23:27],
                "sequence_number": int(text[27:33]),
                "action_date": text[62:68],
                "amount_cents": int(text[51:62]),
                "user_branch": int(text[6:12]),
                "user_account": text[12:23],
                "homing_branch": int(text[33:39]),
                "homing_account": text[39:50],
                "account_type": int(text[50]),
                "homing_account_name": text[104:134].rstrip(),
                "user_reference": text[74:104].rstrip(),
                "entry_class": int(text[68:70]),
                "state": "received",
            }


def child(mode: str, path: Path, url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    if mode == "ingest":
        result = ingest(engine, path)
        assert result.state == "accepted", result.reason
        stored = result.summary.transactions if result.summary else 0
    else:
        stored = 0
        with engine.begin() as conn:
            conn.execute(
                insert(eft_files).values(id=1, name="plain", content_hash="-", state="accepted", received_us=0)
            )
            batch: list[dict[str, Any]] = []
            for row in _plain_rows(path):
                batch.append(row)
                if len(batch) == BATCH:
                    bulk_insert(conn, eft_transactions, batch)
                    stored += len(batch)
                    batch.clear()
            if batch:
                bulk_insert(conn, eft_transactions, batch)
                stored += len(batch)
    elapsed = time.perf_counter() - started
    # VmHWM is this program's own peak: unlike ru_maxrss it does not carry the parent's
    # footprint over from before exec.
    status = Path("/proc/self/status").read_text()
    peak_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps({"mode": mode, "seconds": elapsed, "peak_mb": peak_mb, "rows": stored}))


def fresh(url: str | None, folder: Path, label: str) -> str:
    if url is None:
        return f"sqlite:///{folder / f'{label}.db'}"
    name = f"xhuma_p4_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.child[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "payments.eft"
        day = date.today()
        started = time.perf_counter()
        with path.open("w") as out:
            count = write_payments(
                out,
                list(random_sets(args.records, action_date=day)),
                created=day,
                sender=9000,
                destination=45001,
                number=1,
            )
        print(f"wrote {count} records ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
        results = {}
        for mode in ("plain", "ingest"):
            url = fresh(args.database_url, folder, mode)
            done = subprocess.run(
                [sys.executable, "-m", "bench.p4_eft", "--child", mode, str(path), url],
                env=env(),
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode] = json.loads(done.stdout.splitlines()[-1])
        backend = "postgresql" if args.database_url else "sqlite"
        print(f"P4 {args.records} transactions, {backend}")
        print("what                       seconds  peak MB  rows/s")
        for mode, label in (("plain", "plain bulk insert"), ("ingest", "checked + stored (intake)")):
            r = results[mode]
            print(f"{label:<26} {r['seconds']:7.1f}  {r['peak_mb']:7.0f}  {r['rows'] / r['seconds']:7.0f}")
        print(f"ratio intake/plain: {results['ingest']['seconds'] / results['plain']['seconds']:.2f}")


if __name__ == "__main__":
    main()
