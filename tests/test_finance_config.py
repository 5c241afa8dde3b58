"""`[[finance.processes]]` is checked whole with the settings: a mistake is one line naming the
file, the key (from `finance`) and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from xhuma.config import ConfigError, load_settings
from xhuma.finance.processes import Process

PROVIDER = '[[providers]]\nname = "sim"\nbase_url = "http://127.0.0.1:9"\n'
PROCESS = """
[[finance.processes]]
name = "sim-ppu"
service = "ppu"
counterparty = "sim"
time_zone = "Africa/Johannesburg"
expiry_days = 2
exclude = ["declined", "unknown", "reversed"]

[finance.processes.file]
delimiter = ","
header_lines = 1
name_pattern = "SIM_XHUMA_EXTRACT_PPU_SWITCH_YYYYMMDD_EPOCH.csv"
amount_unit = "cents"
columns = { reference = "reference", amount = "amount_cents", time = "time", type = "type", meter = "meter" }

[[finance.processes.rules]]
name = "exact"
criteria = [
  { field = "reference", operator = "equals" },
  { field = "amount", operator = "equals", drift = 0 },
  { field = "time", operator = "equals", drift = 300 },
]

[[finance.processes.auto_resolutions]]
within_cents = 5
in_favour_of = "sim"
"""
"""A process for the PPU simulator's extract (`GET /_sim/extract`), used by the end-to-end test."""

RULE = '\n[[finance.processes.rules]]\ncriteria = [{ field = "reference" }]\n'


def sim_process(folder: Path) -> Process:
    """The process above, as the settings read it."""
    path = folder / "xhuma.toml"
    path.write_text(PROVIDER + PROCESS)
    process = load_settings(path).process("sim-ppu")
    assert process is not None
    return process


def test_a_whole_process_is_read(tmp_path: Path) -> None:
    process = sim_process(tmp_path)
    assert process.file.columns["amount"] == "amount_cents"
    assert process.rules[0].criteria[2].drift == 300
    assert process.auto_resolutions[0].within_cents == 5
    assert process.expiry_days == 2 and process.cycle == "daily"


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("drift = 300", "drift = -1"), "finance.processes[0].rules[0].criteria[2].drift", ">= 0"),
        (("drift = 300", 'drift = "1%"'), "finance.processes[0].rules[0].criteria[2].drift", "whole seconds"),
        (("drift = 0 }", 'drift = "x%" }'), "finance.processes[0].rules[0].criteria[1].drift", "percentage"),
        (('operator = "equals" }', 'operator = "before" }'), "finance.processes[0].rules[0].criteria[0].operator", ""),
        (('service = "ppu"', 'service = "atm"'), "finance.processes[0].service", "invalid enum value 'atm'"),
        (('counterparty = "sim"', 'counterparty = "nobody"'), "finance.processes[0].counterparty", "no provider"),
        (('"Africa/Johannesburg"', '"Mars/Olympus"'), "finance.processes[0].time_zone", "unknown time zone"),
        (('"reversed"]', '"lookups"]'), "finance.processes[0].exclude[2]", "neither a transaction kind"),
        (("expiry_days = 2", "expiry_days = 0"), "finance.processes[0].expiry_days", ">= 1"),
        (('delimiter = ","', 'delimiter = ",;"'), "finance.processes[0].file.delimiter", "length <= 1"),
        (('delimiter = ","', 'encoding = "klingon"'), "finance.processes[0].file.encoding", "unknown encoding"),
        (("reference = ", "ref = "), "finance.processes[0].file.columns.ref", "unknown field"),
        (('amount_unit = "cents"', 'amount_unit = "pennies"'), "finance.processes[0].file.amount_unit", ""),
        (('name = "exact"', 'name = "exact"\nstrategy = "best"'), "finance.processes[0].rules[0].strategy", ""),
        (('name = "exact"', 'nmae = "exact"'), "finance.processes[0].rules[0].nmae", "unknown key"),
        (("within_cents = 5", "within_cents = -5"), "finance.processes[0].auto_resolutions[0].within_cents", ">= 0"),
    ],
)
def test_a_mistake_names_the_key(tmp_path: Path, change: tuple[str, str], key: str, reason: str) -> None:
    path = tmp_path / "xhuma.toml"
    assert change[0] in PROCESS
    path.write_text(PROVIDER + PROCESS.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}:") and reason in message, message


def test_the_second_rule_is_named_by_its_index(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    grouped = RULE.replace("criteria = [", 'strategy = "one_to_many"\ncriteria = [{ field = "amount" }, ')
    path.write_text(PROVIDER + PROCESS + grouped.replace('{ field = "reference" }', '{ field = "time" }'))
    with pytest.raises(ConfigError, match=r"finance\.processes\[0\]\.rules\[1\]\.strategy: one_to_many groups"):
        load_settings(path)
    path.write_text(PROVIDER + PROCESS + RULE.replace('"reference" }', '"reference", drift = 3 }'))
    with pytest.raises(ConfigError, match=r"rules\[1\]\.criteria\[0\]\.drift: only amounts and times"):
        load_settings(path)


def test_two_processes_of_one_name_and_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(PROVIDER + PROCESS + PROCESS)
    with pytest.raises(ConfigError, match=r"finance\.processes\[1\]\.name: a second process named 'sim-ppu'"):
        load_settings(path)
    path.write_text(PROVIDER + PROCESS.replace(' time = "time",', ""))
    with pytest.raises(ConfigError, match=r"finance\.processes\[0\]\.file\.columns\.time: is required"):
        load_settings(path)
    path.write_text(PROVIDER + PROCESS.replace("header_lines = 1", "header_lines = 0"))
    with pytest.raises(ConfigError, match=r"file\.columns\.reference: a column named 'reference' needs header_lines"):
        load_settings(path)
