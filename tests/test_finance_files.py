"""A counterparty's file is read by its specification and checked whole: every bad line is
reported with its number, the line as it was and the reason, and nothing is loaded."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.test_finance_config import sim_process
from xhuma.finance.files import FileRefused, read_file
from xhuma.finance.processes import Process

HEADER = b"reference,amount_cents,time,type,meter\n"
GOOD = b"id-1,1000,2026-01-01T10:00:00+02:00,purchase,01234567890\n"
NAME = "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260101_1767225600.csv"


@pytest.fixture
def process(tmp_path: Path) -> Process:
    return sim_process(tmp_path)


def test_a_good_file_is_read_into_cents_and_microseconds(process: Process) -> None:
    records = read_file(process, HEADER + GOOD + b"id-2,5,2026-01-01 09:00:00,reversal,\r\n", NAME)
    assert [r.id for r in records] == ["2", "3"]
    assert records[0].amount == 1000 and records[0].meter == "01234567890"
    assert records[0].time_us == 1_767_254_400_000_000  # 08:00 UTC
    assert records[1].time_us == 1_767_250_800_000_000  # a naive time is in the process's zone (+02:00)
    assert records[1].meter is None


def test_a_malformed_file_is_refused_whole_with_every_bad_line(process: Process) -> None:
    content = (
        HEADER
        + GOOD
        + b"id-3,12.50,2026-01-01T10:00:00Z,purchase,1\n"
        + b",100,2026-01-01T10:00:00Z,purchase,1\n"
        + b"id-5,100,yesterday,purchase,1\n"
        + b"id-6,100\n"
        + GOOD
        + b"id-8,100,2026-01-01T10:00:00Z,purchase,\xff\n"
    )
    with pytest.raises(FileRefused) as caught:
        read_file(process, content, "extract.csv")
    problems = [(p.line, p.reason.split(":")[0]) for p in caught.value.problems]
    assert problems == [
        (0, "the file name does not follow SIM_XHUMA_EXTRACT_PPU_SWITCH_YYYYMMDD_EPOCH.csv"),
        (3, "amount"),
        (4, "reference"),
        (5, "time"),
        (6, "2 columns, the header has 5"),
        (8, "not utf-8"),
    ]
    assert caught.value.problems[2].raw == ",100,2026-01-01T10:00:00Z,purchase,1"
    assert "'12.50' is not a whole number of cents" in caught.value.problems[1].reason


def test_decimal_amounts_positions_and_a_missing_header_column(process: Process) -> None:
    spec = msgspec.structs.replace(
        process.file, amount_unit="decimal", header_lines=0, columns={"reference": 1, "amount": 2, "time": 3}
    )
    decimal = msgspec.structs.replace(process, file=spec)
    records = read_file(decimal, b"a,12.50,2026-01-01T00:00:00Z\nb,-0.05,2026-01-01T00:00:00Z\n")
    assert [r.amount for r in records] == [1250, -5]
    with pytest.raises(FileRefused) as caught:
        read_file(decimal, b"a,12.505,2026-01-01T00:00:00Z\n")
    assert "at most two decimals" in caught.value.problems[0].reason
    with pytest.raises(FileRefused) as caught:
        read_file(process, b"reference,amount,time\n")
    assert caught.value.problems[0].line == 1 and "no column amount_cents" in caught.value.problems[0].reason


FIXED = """
[finance.processes.file]
format = "fixed"
header_lines = 1
trailer_lines = 1
line_ending = "crlf"
encoding = "latin-1"
columns = { reference = [1, 10], amount = [11, 8], time = [19, 20], meter = [39, 11] }
"""


def line(reference: str, amount: str, time: str, meter: str, end: bytes = b"\r\n") -> bytes:
    """One record of the fixed-width layout above."""
    return f"{reference:<10}{amount:>8}{time:<20}{meter:<11}".encode("latin-1") + end


def fixed_process(folder: Path) -> Process:
    """The simulator's process, reading a fixed-width file instead."""
    from tests.test_finance_config import PROCESS, PROVIDER
    from xhuma.config import load_settings

    head, _, rest = PROCESS.partition("[finance.processes.file]")
    rules = rest[rest.index("[[finance.processes.rules]]") :]
    path = folder / "fixed.toml"
    path.write_text(PROVIDER + head + FIXED + "\n" + rules)
    found = load_settings(path).process("sim-ppu")
    assert found is not None
    return found


def test_a_fixed_width_file_is_read_by_its_positions(tmp_path: Path) -> None:
    process = fixed_process(tmp_path)
    content = (
        b"HEADER 20260101\r\n"
        + line("id-1", "1000", "2026-01-01T10:00:00Z", "01234567890")
        + line("id-\u00e92", "5", "2026-01-01T09:00:00Z", "")
        + b"TRAILER 2\r\n"
    )
    records = read_file(process, content)
    assert [(r.id, r.reference, r.amount, r.meter) for r in records] == [
        ("2", "id-1", 1000, "01234567890"),
        ("3", "id-\u00e92", 5, None),
    ]
    assert records[0].time_us == 1_767_261_600_000_000


def test_a_malformed_fixed_width_file_is_refused_whole_with_line_numbers(tmp_path: Path) -> None:
    process = fixed_process(tmp_path)
    content = (
        b"HEADER\r\n"
        + line("id-1", "1000", "2026-01-01T10:00:00Z", "01234567890")
        + line("id-2", "12.5", "2026-01-01T10:00:00Z", "01234567890")
        + line("id-3", "100", "2026-01-01T10:00:00Z", "").rstrip()
        + b"\r\n"
        + line("", "100", "2026-01-01T10:00:00Z", "01234567890")
        + line("id-6", "100", "2026-01-01T10:00:00Z", "01234567890", end=b"\n")
        + line("id-7", "100", "yesterday", "01234567890")
        + b"TRAILER\r\n"
    )
    with pytest.raises(FileRefused) as caught:
        read_file(process, content)
    problems = [(p.line, p.reason) for p in caught.value.problems]
    assert problems == [
        (3, "amount: '12.5' is not a whole number of cents"),
        (4, "meter: characters 39-49 are past the line's end (38 characters)"),
        (5, "reference: empty"),
        (6, "ends with LF alone; the file's lines end with CRLF"),
        (7, "time: 'yesterday' does not follow iso"),
    ]
    assert caught.value.problems[1].raw == "id-3           1002026-01-01T10:00:00Z"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ('{ reference = [1, 10], amount = [11, 8], time = "time" }', "columns.time: a fixed-width column is [start"),
        ("{ reference = [1, 10], amount = [11, 8], time = [0, 20] }", "columns.time: a fixed-width column"),
        ("{ reference = [1, 10], amount = [10, 8], time = [19, 20] }", "columns.amount: overlaps columns.reference"),
    ],
)
def test_fixed_width_columns_are_checked_naming_the_key(tmp_path: Path, columns: str, message: str) -> None:
    from tests.test_finance_config import PROCESS, PROVIDER
    from xhuma.config import ConfigError, load_settings

    text = PROCESS.replace('delimiter = ","', 'format = "fixed"')
    at = text.index("columns = {")
    text = text.replace(text[at : text.index("\n", at)], f"columns = {columns}")
    path = tmp_path / "x.toml"
    path.write_text(PROVIDER + text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"finance.processes[0].file.{message}" in str(caught.value)
    csv = PROCESS.replace('amount = "amount_cents"', "amount = [1, 2]")
    path.write_text(PROVIDER + csv)
    with pytest.raises(ConfigError, match=r"file\.columns\.amount: \[start, length\] is for format = \"fixed\""):
        load_settings(path)
