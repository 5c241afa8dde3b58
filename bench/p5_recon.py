"""P5: a day of N of our records reconciled against N of theirs (1 % of each discrepancy:
missing, extra, amount, time) under one one-to-one rule (reference equal, amount within 5 cents,
time within 300 s): their file loaded (`finance.intake.take`), the day matched and every result
stored (`finance.store.run`), beside a plain DuckDB join of the same two files under the same
criteria, each in its own process, with each process's peak memory.

    python -m bench.p5_recon [--records 1000000] [--database-url postgresql://127.0.0.1:5432/test]

Our records are put in the journal first (not timed); without --database-url it is a fresh SQLite
file."""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.common import env
from bench.p4_eft import fresh
from xhuma.finance.processes import Process

DAY = date(2026, 1, 15)
START_S = int(datetime(2026, 1, 15, tzinfo=UTC).timestamp())
NAME = f"SIM_XHUMA_EXTRACT_PPU_SWITCH_{DAY:%Y%m%d}_{START_S}.csv"
PROCESS: dict[str, Any] = {
    "name": "p5",
    "service": "ppu",
    "counterparty": "sim",
    "file": {
        "name_pattern": "SIM_XHUMA_EXTRACT_PPU_SWITCH_YYYYMMDD_EPOCH.csv",
        "columns": {"reference": "reference", "amount": "amount_cents", "time": "time", "type": "type"},
    },
    "rules": [
        {
            "name": "p5",
            "criteria": [
                {"field": "reference"},
                {"field": "amount", "drift": 5},
                {"field": "time", "drift": 300},
            ],
        }
    ],
}
BATCH = 50_000


def process() -> Process:
    return msgspec.convert(PROCESS, Process)


def write_files(records: int, folder: Path) -> tuple[Path, Path, dict[str, int]]:
    """Ours (id, amount, time in microseconds) and theirs (the process's CSV), seeded."""
    rng = random.Random(5)
    one = records // 100
    kinds = ["missing"] * one + ["amount"] * one + ["time"] * one + ["same"] * (records - 3 * one)
    rng.shuffle(kinds)
    ours_path, theirs_path = folder / "ours.csv", folder / NAME
    with ours_path.open("w", newline="") as ours_file, theirs_path.open("w", newline="") as theirs_file:
        ours, theirs = csv.writer(ours_file), csv.writer(theirs_file)
        ours.writerow(("reference", "amount", "time_us"))
        theirs.writerow(("reference", "amount_cents", "time", "type"))
        for n, kind in enumerate(kinds):
            reference = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            amount = rng.randrange(500, 100_000)
            at = START_S + n * 86_000 // records
            ours.writerow((reference, amount, at * 1_000_000))
            if kind == "missing":
                continue
            amount += 100 if kind == "amount" else rng.randrange(0, 3)
            at += 3_600 if kind == "time" else rng.randrange(0, 60)
            theirs.writerow((reference, amount, _iso(min(at, START_S + 86_399)), "purchase"))
        for _ in range(one):
            reference = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            theirs.writerow((reference, rng.randrange(500, 100_000), _iso(START_S + rng.randrange(86_400)), "purchase"))
    return ours_path, theirs_path, {"missing": one, "extra": one, "amount": one, "time": one}


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def setup(ours: Path, url: str) -> None:
    """Our records in the journal, as purchases approved by the counterparty (not timed)."""
    from xhuma.storage.db import bulk_insert, make_engine, migrate
    from xhuma.storage.tables import transactions

    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn, ours.open() as handle:
        rows: list[dict[str, Any]] = []
        for reference, amount, time_us in csv.reader(handle):
            if reference == "reference":
                continue
            rows.append(
                {
                    "id": reference,
                    "client_id": "r1",
                    "retail_id": reference,
                    "id_space": "request",
                    "kind": "purchase",
                    "state": "approved",
                    "amount": int(amount),
                    "currency": "ZAR",
                    "provider": "sim",
                    "created_us": int(time_us),
                    "updated_us": int(time_us),
                }
            )
            if len(rows) == BATCH:
                bulk_insert(conn, transactions, rows)
                rows.clear()
        bulk_insert(conn, transactions, rows)
    engine.dispose()


def measure_xhuma(theirs: Path, url: str) -> dict[str, Any]:
    from xhuma.finance import store
    from xhuma.finance.intake import take
    from xhuma.storage.db import Database

    db = Database(url)
    started = time.perf_counter()
    taken = take(db.run_sync, process(), theirs.name, theirs.read_bytes())
    assert taken.status == store.LOADED, taken.problems[:3]
    loaded = time.perf_counter()
    done = db.run_sync(store.run(process(), DAY, str(uuid.uuid4())))
    ran = time.perf_counter()
    summary = db.run_sync(store.summary("p5", DAY))
    counts = {name: summary[name]["count"] for name in store.CATEGORIES}
    return {
        "seconds": ran - started,
        "load_seconds": loaded - started,
        "run_seconds": ran - loaded,
        "rows": done.ours + done.theirs,
        "counts": counts,
    }


def measure_join(ours: Path, theirs: Path) -> dict[str, Any]:
    """The same criteria as one DuckDB join of the two files, its pairs materialised."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute(
        f"""CREATE TABLE pairs AS
        SELECT o.reference, o.amount, t.amount_cents, o.time_us, t.time
        FROM read_csv('{ours}', header = true) o
        JOIN read_csv('{theirs}', header = true, timestampformat = '%Y-%m-%dT%H:%M:%SZ') t
          ON o.reference = t.reference AND abs(o.amount - t.amount_cents) <= 5
         AND abs(o.time_us - epoch_us(t.time)) <= 300000000"""
    )
    row = con.execute("SELECT count(*) FROM pairs").fetchone()
    return {"seconds": time.perf_counter() - started, "rows": row[0] if row else 0}


def child(mode: str, ours: Path, theirs: Path, url: str) -> None:
    if mode == "setup":
        setup(ours, url)
        return
    result = measure_xhuma(theirs, url) if mode == "xhuma" else measure_join(ours, theirs)
    # VmHWM: this program's own peak (see P4)
    status = Path("/proc/self/status").read_text()
    result["peak_mb"] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    print(json.dumps(result))


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.p5_recon", "--child", *args], env=env(), capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    lines = done.stdout.splitlines()
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "OURS", "THEIRS", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.child[3])
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        ours, theirs, injected = write_files(args.records, folder)
        url = fresh(args.database_url, folder, "p5")
        print(f"wrote {args.records} of ours and theirs in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        _child("setup", str(ours), str(theirs), url)
        print(f"our records in the journal in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
        join = _child("join", str(ours), str(theirs), url)
        xhuma = _child("xhuma", str(ours), str(theirs), url)
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"P5 {args.records} ours against {len(injected) and args.records} theirs, {backend}; injected {injected}")
    print(f"results: {xhuma['counts']}")
    print("what                                   seconds  peak MB")
    print(f"{'plain DuckDB join of the two files':<38} {join['seconds']:7.1f}  {join['peak_mb']:7.0f}")
    print(f"{'xhuma: load their file':<38} {xhuma['load_seconds']:7.1f}")
    print(f"{'xhuma: match the day, store results':<38} {xhuma['run_seconds']:7.1f}")
    print(f"{'xhuma: loaded, matched, stored':<38} {xhuma['seconds']:7.1f}  {xhuma['peak_mb']:7.0f}")
    print(f"ratio xhuma/join: {xhuma['seconds'] / join['seconds']:.1f}; join pairs {join['rows']}")


if __name__ == "__main__":
    main()
