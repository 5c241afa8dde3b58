"""The recon-day reports on both backends: the summary CSV carries `store.summary`'s figures for
a day with every kind of result, the exceptions CSV exactly the records not matched, the PDFs
render (poppler's pdftoppm) and say what they report (pdftotext), files are replaced whole under
their stable names; `xhuma recon run` fills the outbox, and bad input is one line and exit 2."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import test_finance_end_to_end as end_to_end
from tests.support import Retailer, Server, process_env, xhuma
from tests.test_finance_config import PROCESS, PROVIDER, sim_process
from tests.test_finance_store import DAY, HEADER, journal, line, load
from xhuma.config import ConfigError, load_settings
from xhuma.finance import reports, store
from xhuma.finance.processes import Process
from xhuma.storage.db import Database

BEFORE = DAY - timedelta(days=2)  # expiry_days = 2: what is unmatched then expires on DAY
GENERATED = 1_767_261_600_000_000  # 2026-01-01 10:00:00 UTC

rig = end_to_end.rig  # the simulator, the switch and a till, as the end-to-end test has them

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")


@pytest.fixture
def process(tmp_path: Path) -> Process:
    return sim_process(tmp_path)


@pytest.fixture
def day(db: Database, process: Process) -> dict[str, str]:
    """DAY reconciled with one record of each kind: our ids (and their references) by kind."""
    never = journal(db, process, BEFORE, 200)
    load(db, process, "before.csv", HEADER + line(process, BEFORE, "ghost", 300))
    db.run_sync(store.run(process, BEFORE, str(uuid.uuid4())))
    ids = {
        "matched": journal(db, process, DAY, 1000),
        "auto": journal(db, process, DAY, 2000),
        "amount": journal(db, process, DAY, 3000),
        "time": journal(db, process, DAY, 4000),
        "ours_only": journal(db, process, DAY, 500),
        "never": never,
    }
    content = HEADER + b"".join(
        [
            line(process, DAY, ids["matched"], 1000),
            line(process, DAY, ids["auto"], 2003),  # within the 5 cents auto-resolution
            line(process, DAY, ids["amount"], 3100),
            line(process, DAY, ids["time"], 4000, shift_seconds=600),  # past the 300 s drift
            line(process, DAY, "extra", 7),
        ]
    )
    load(db, process, "day.csv", content)
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    return ids


def read_csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def cents(text: str) -> int | None:
    if not text:
        return None
    amount = Decimal(text)
    assert amount == amount.quantize(Decimal("0.01")) and "." in text and len(text.split(".")[1]) == 2
    return int(amount * 100)


def assert_carries(rows: list[dict[str, str]], summary: dict[str, Any]) -> None:
    """The summary CSV's rows say what `store.summary` (or `recon summary --json`) says."""
    assert [r["category"] for r in rows] == list(store.CATEGORIES)
    for row in rows:
        figures = summary[row["category"]]
        assert (row["process"], row["date"]) == (summary["process"], summary["date"])
        assert int(row["count"]) == figures["count"]
        assert cents(row["amount"]) == figures["amount"]
        assert cents(row["their_amount"]) == figures.get("their_amount")
        assert cents(row["difference"]) == figures.get("difference")
        assert (row["ours"], row["theirs"]) == (str(figures.get("ours", "")), str(figures.get("theirs", "")))


def test_the_summary_csv_carries_the_store_summary(db: Database, process: Process, day: dict[str, str]) -> None:
    report = db.run_sync(reports.read(process, DAY, GENERATED))
    rows = read_csv(reports.summary_csv(report))
    assert_carries(rows, db.run_sync(store.summary(process.name, DAY)))
    # every kind is there, so the comparison compared something
    by = {r["category"]: r for r in rows}
    assert by["matched"]["count"] == "1" and by["matched"]["amount"] == "10.00"
    assert by["auto_resolved"]["difference"] == "0.03"
    assert by["partially_matched"]["count"] == "2" and by["partially_matched"]["difference"] == "1.00"
    assert by["unmatched_ours"]["amount"] == "5.00" and by["unmatched_theirs"]["amount"] == "0.07"
    assert (by["expired"]["count"], by["expired"]["amount"], by["expired"]["ours"]) == ("2", "5.00", "1")


def test_the_exceptions_csv_lists_exactly_the_records_not_matched(
    db: Database, process: Process, day: dict[str, str]
) -> None:
    report = db.run_sync(reports.read(process, DAY, GENERATED))
    rows = read_csv(reports.exceptions_csv(report))
    everything = db.run_sync(store.results(process.name, DAY))
    expected = {(r["side"], r["record_id"]) for r in everything if r["status"] != "matched"}
    assert {(r["side"], r["record_id"]) for r in rows} == expected
    assert len(rows) == len(expected) == 2 * 2 + 1 + 1 + 2  # two partial pairs, one each side unmatched, two expired
    ours = {r["record_id"]: r for r in rows if r["side"] == "ours"}
    assert ours[day["amount"]]["differences"] == "amount +1.00" and ours[day["amount"]]["status"] == "partially_matched"
    assert ours[day["time"]]["differences"] == "time +630 s"  # their lines are 30 s after ours
    assert "differ in time" in ours[day["time"]]["reason"] and ours[day["time"]]["rule"] == "exact"
    assert ours[day["ours_only"]]["missing"] == "theirs" and ours[day["ours_only"]]["amount"] == "5.00"
    assert ours[day["ours_only"]]["reason"] == "no record of it in sim's files"
    assert ours[day["ours_only"]]["time"] == "2026-01-01T10:00:00+02:00"
    assert ours[day["never"]]["status"] == "expired" and "2 days after" in ours[day["never"]]["reason"]
    theirs = {r["reference"]: r for r in rows if r["side"] == "theirs"}
    assert theirs["extra"]["missing"] == "ours" and theirs["extra"]["reason"] == "no record of it in our journal"
    assert theirs["ghost"]["status"] == "expired" and theirs["ghost"]["record_day"] == BEFORE.isoformat()
    assert theirs[day["amount"]]["counterparts"] == day["amount"]
    assert day["matched"] not in ours and day["auto"] not in ours


def test_the_chart_counts_the_days_own_records_per_hour(db: Database, process: Process, day: dict[str, str]) -> None:
    ours, theirs = reports.hourly_volumes(db.run_sync(reports.read(process, DAY, GENERATED)))
    assert ours == [0] * 10 + [5] + [0] * 13  # ten in the morning in Johannesburg; not BEFORE's
    assert theirs == [0] * 10 + [5] + [0] * 13


def pdf_text(path: Path, page: int | None = None) -> str:
    pages = [] if page is None else ["-f", str(page), "-l", str(page)]
    done = subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(path: Path, out: Path) -> list[Path]:
    done = subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return sorted(out.parent.glob(out.name + "*.png"))


@needs_poppler
def test_the_pdfs_render_and_carry_the_figures(
    db: Database, process: Process, day: dict[str, str], tmp_path: Path
) -> None:
    report = db.run_sync(reports.read(process, DAY, GENERATED))
    written = reports.write(report, tmp_path / "out")
    assert sorted(p.name for p in written) == [
        "sim-ppu_EXCEPTIONS_20260101.csv",
        "sim-ppu_EXCEPTIONS_20260101.pdf",
        "sim-ppu_RECON_SUMMARY_20260101.csv",
        "sim-ppu_RECON_SUMMARY_20260101.pdf",
    ]
    summary_pdf = tmp_path / "out" / "sim-ppu_RECON_SUMMARY_20260101.pdf"
    assert len(render(summary_pdf, tmp_path / "summary")) == 1
    text = pdf_text(summary_pdf)
    for expected in ("Reconciliation summary", "sim-ppu", "Counterparty", "ppu", "2026-01-01 (Africa/Johannesburg)"):
        assert expected in text
    assert "2026-01-01 10:00:00 UTC" in text and "per hour" in text and "ours (journal)" in text
    words = " ".join(text.split())
    for row in (
        "Matched 1 10.00 10.00 Partially matched 2 70.00 71.00 +1.00 Auto-resolved 1 20.00 20.03 +0.03",
        "Unmatched: ours only 1 5.00 Unmatched: theirs only 1 0.07 Expired 2 5.00",
        "6 of our records and 6 of theirs decided in 1 run(s); expired: 1 of ours, 1 of theirs",
    ):
        assert row in words
    exceptions_pdf = tmp_path / "out" / "sim-ppu_EXCEPTIONS_20260101.pdf"
    assert len(render(exceptions_pdf, tmp_path / "exceptions")) == 1
    text = " ".join(pdf_text(exceptions_pdf).split())
    assert "Reconciliation exceptions" in text and "ghost" in text and "extra" in text and "amount +1.00" in text
    assert "8 exception(s), 151.07 in all" in text  # 3000+3100 + 2*4000 + 500 + 7 + 200 + 300 cents


@needs_poppler
def test_a_long_exceptions_report_runs_over_pages(db: Database, process: Process, tmp_path: Path) -> None:
    content = HEADER + b"".join(line(process, DAY, f"theirs-{n:03d}", n + 1) for n in range(120))
    load(db, process, "many.csv", content)
    db.run_sync(store.run(process, DAY, str(uuid.uuid4())))
    report = db.run_sync(reports.read(process, DAY, GENERATED))
    [pdf] = reports.write(report, tmp_path, ["exceptions"], ["pdf"])
    pages = render(pdf, tmp_path / "page")
    assert len(pages) >= 2
    texts = [pdf_text(pdf, n) for n in range(1, len(pages) + 1)]
    assert all("Reference" in text and f"page {n}" in text for n, text in enumerate(texts, start=1))  # header repeats
    found = [word for text in texts for word in text.split() if word.startswith("theirs-")]
    assert sorted(found) == [f"theirs-{n:03d}" for n in range(120)]  # each once, none lost at a page break
    assert "120 exception(s), 72.60 in all" in " ".join(texts[-1].split())


def test_reports_are_replaced_whole_and_an_unwritable_folder_is_one_error(
    db: Database, process: Process, tmp_path: Path
) -> None:
    report = db.run_sync(reports.read(process, DAY, GENERATED))  # nothing run: empty but valid
    first = reports.write(report, tmp_path / "box", formats=["csv"])
    assert read_csv(first[1].read_bytes()) == []  # no exceptions, the header only
    again = reports.write(report, tmp_path / "box", formats=["csv"])
    assert again == first and sorted(p.name for p in (tmp_path / "box").iterdir()) == sorted(p.name for p in first)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(reports.ReportError, match="a-file/box: cannot be made a folder for reports: Not a directory"):
        reports.write(report, tmp_path / "a-file" / "box")


def test_the_outbox_is_relative_to_the_configuration_and_must_be_a_folder(tmp_path: Path) -> None:
    config = tmp_path / "xhuma.toml"
    config.write_text(PROVIDER + PROCESS.replace("expiry_days = 2\n", 'expiry_days = 2\noutbox = "reports"\n'))
    process = load_settings(config).process("sim-ppu")
    assert process is not None and process.outbox == str(tmp_path / "reports")
    (tmp_path / "reports").write_text("")
    with pytest.raises(ConfigError, match=r"finance\.processes\[0\]\.outbox: .*reports is not a folder"):
        load_settings(config)
    config.write_text(PROVIDER + PROCESS.replace("expiry_days = 2\n", 'expiry_days = 2\noutbox = ""\n'))
    with pytest.raises(ConfigError, match=r"finance\.processes\[0\]\.outbox: expected `str` of length >= 1"):
        load_settings(config)


NAME = "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260101_1767225600.csv"


def test_recon_run_fills_the_outbox_and_bad_input_is_one_line(fresh_database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "xhuma.toml"
    config.write_text(PROVIDER + PROCESS.replace("expiry_days = 2\n", 'expiry_days = 2\noutbox = "outbox"\n'))
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    extract = tmp_path / NAME
    extract.write_text(HEADER.decode() + "a,100,2026-01-01T10:00:00Z,purchase,\nb,150,2026-01-01T21:30:00Z,purchase,\n")
    xhuma("recon", "load", str(extract), "--process", "sim-ppu", env=env)
    ran = xhuma("recon", "run", "--process", "sim-ppu", "--date", "2026-01-01", env=env)
    outbox = tmp_path / "outbox"
    names = sorted(p.name for p in outbox.iterdir())
    assert names == [
        "sim-ppu_EXCEPTIONS_20260101.csv",
        "sim-ppu_EXCEPTIONS_20260101.pdf",
        "sim-ppu_RECON_SUMMARY_20260101.csv",
        "sim-ppu_RECON_SUMMARY_20260101.pdf",
    ]
    assert f"wrote {outbox / names[2]}" in ran.stdout
    summary = json.loads(
        xhuma("recon", "summary", "--process", "sim-ppu", "--date", "2026-01-01", "--json", env=env).stdout
    )
    assert_carries(read_csv((outbox / names[2]).read_bytes()), summary)
    assert summary["unmatched_theirs"]["amount"] == 250
    exceptions = read_csv((outbox / names[0]).read_bytes())
    assert sorted((r["reference"], r["time"]) for r in exceptions) == [
        ("a", "2026-01-01T12:00:00+02:00"),
        ("b", "2026-01-01T23:30:00+02:00"),  # the day is Johannesburg's
    ]

    out = tmp_path / "elsewhere"
    made = xhuma(
        "report",
        "exceptions",
        "--process",
        "sim-ppu",
        "--date",
        "2026-01-01",
        "--format",
        "csv",
        "--out",
        str(out),
        env=env,
    )
    assert made.stdout == f"wrote {out / 'sim-ppu_EXCEPTIONS_20260101.csv'}\n"
    assert [p.name for p in out.iterdir()] == ["sim-ppu_EXCEPTIONS_20260101.csv"]

    (tmp_path / "a-file").write_text("")
    for args, message in [
        (["report", "recon", "--process", "nope", "--date", "2026-01-01"], "no reconciliation process 'nope'"),
        (["report", "recon", "--process", "sim-ppu", "--date", "2026-02-30"], "--date: '2026-02-30' is not a date"),
        (["report", "recon", "--process", "sim-ppu", "--date", "2026-01-03"], "2026-01-03: the day has not been run"),
        (
            ["report", "day", "--process", "sim-ppu", "--date", "2026-01-01", "--out", str(tmp_path / "a-file" / "x")],
            "cannot be made a folder for reports: Not a directory",
        ),
        (["report", "recon", "--process", "sim-ppu", "--date", "2026-01-01", "--format", "doc"], "'doc'"),
    ]:
        bad = xhuma(*args, env=env, check=False)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and bad.stdout == ""
        assert len(bad.stderr.splitlines()) == 1 or "--format" in args  # a bad choice is typer's usage message

    config.write_text(
        PROVIDER + PROCESS.replace("expiry_days = 2\n", f'expiry_days = 2\noutbox = "{tmp_path / "a-file" / "x"}"\n')
    )
    failed = xhuma("recon", "run", "--process", "sim-ppu", "--date", "2026-01-02", env=env, check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("sim-ppu 2026-01-02: the run is stored, its reports are not: ")
    assert len(failed.stderr.splitlines()) == 1
    stored: dict[str, Any] = json.loads(
        xhuma("recon", "summary", "--process", "sim-ppu", "--date", "2026-01-02", "--json", env=env).stdout
    )
    assert stored["runs"] == 1
    assert date.fromisoformat(stored["date"]) == date(2026, 1, 2)


@needs_poppler
def test_a_day_of_purchases_lands_in_the_outbox(rig: tuple[Server, dict[str, str], Retailer], tmp_path: Path) -> None:
    simulator, env, till = rig
    today, extract, injected, _ = end_to_end.purchases_and_extract(simulator, till, tmp_path)
    config = tmp_path / "xhuma.toml"  # the rig's: read again by each command
    config.write_text(config.read_text().replace("expiry_days = 2\n", 'expiry_days = 2\noutbox = "outbox"\n'))
    xhuma("recon", "load", str(extract), "--process", "sim-ppu", env=env)
    end_to_end.recon(env, "run", "--date", today.isoformat())
    summary = json.loads(end_to_end.recon(env, "summary", "--date", today.isoformat(), "--json"))
    stem = f"sim-ppu_{{}}_{today:%Y%m%d}"
    outbox = tmp_path / "outbox"
    assert sorted(p.name for p in outbox.iterdir()) == sorted(
        stem.format(kind) + ext for kind in ("RECON_SUMMARY", "EXCEPTIONS") for ext in (".csv", ".pdf")
    )
    assert_carries(read_csv((outbox / (stem.format("RECON_SUMMARY") + ".csv")).read_bytes()), summary)
    exceptions = read_csv((outbox / (stem.format("EXCEPTIONS") + ".csv")).read_bytes())
    by_status = {
        status: sorted((r["side"], r["reference"]) for r in exceptions if r["status"] == status)
        for status in ("unmatched", "partially_matched")
    }
    [missing], [extra], [shifted] = injected["missing"], injected["extra"], injected["time_shift"]
    assert by_status == {
        "unmatched": [("ours", missing), ("theirs", extra)],
        "partially_matched": [("ours", shifted), ("theirs", shifted)],
    }
    assert len(exceptions) == 4  # the auto-resolved amount difference is matched, not an exception
    summary_pdf = outbox / (stem.format("RECON_SUMMARY") + ".pdf")
    assert len(render(summary_pdf, tmp_path / "summary")) == 1
    words = " ".join(pdf_text(summary_pdf).split())
    matched = summary["matched"]
    assert "Process sim-ppu Counterparty sim Service ppu" in words
    assert f"Matched {matched['count']} {Decimal(matched['amount']).scaleb(-2)}" in words
    assert "8 of our records and 8 of theirs decided in 1 run(s)" in words
