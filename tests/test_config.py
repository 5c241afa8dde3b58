"""The configuration file is checked whole: every mistake is one line naming file, key and reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, process_env
from xhuma.config import ConfigError, load_settings

PROVIDER = '[[providers]]\nname = "a"\nbase_url = "http://127.0.0.1:9"\n'


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (PROVIDER + "read_timeot = 3\n", "providers[0].read_timeot", "unknown key"),
        ("[saf]\nconcurency = 4\n", "saf.concurency", "unknown key"),
        ("[swich]\n", "swich", "unknown key"),
        (PROVIDER + PROVIDER, "providers[1].name", "a second provider named 'a'"),
        (PROVIDER + "read_timeout = -1\n", "providers[0].read_timeout", "> 0"),
        (PROVIDER + 'read_timeout = "abc"\n', "providers[0].read_timeout", "expected `float`, got `str`"),
        (PROVIDER + 'kind = "iso8583"\n', "providers[0].kind", "unknown kind 'iso8583'; known: ppu_v3, suv_v1"),
        (PROVIDER + 'capabilities = ["retry", "teleport"]\n', "providers[0].capabilities", "unknown teleport"),
        ('[[providers]]\nname = "a"\nbase_url = "not a url"\n', "providers[0].base_url", "is not an http"),
        ('[[providers]]\nname = "a"\nbase_url = "http://h:port/"\n', "providers[0].base_url", "is not an http"),
        ('[[providers]]\nbase_url = "http://h"\n', "providers[0].name", "is required"),
        ("[switch]\nmax_body_bytes = 0\n", "switch.max_body_bytes", ">= 1"),
        ('[switch]\nadmin_networks = ["10.0.0.1/8"]\n', "switch.admin_networks", "'10.0.0.1/8' is not a network"),
        ("[switch]\nread_timeout_seconds = 0\n", "switch.read_timeout_seconds", "> 0"),
        ('[saf]\nwindows = { q = "25:00-26:00" }\n', "saf.windows.q", "not a time of day"),
        ('[eft]\ndebit_release = "8am"\n', "eft.debit_release", ""),
        ('[eft]\nbank_url = "ftp://bank"\n', "eft.bank_url", "is not an http"),
        ("[saf]\nlease_seconds = 30\n" + PROVIDER + "read_timeout = 60\n", "saf.lease_seconds", "must exceed"),
    ],
)
def test_a_mistake_names_the_file_the_key_and_the_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}") and reason in message, message


def test_a_file_that_is_not_toml_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text("[switch]\ninstitution_id = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2, column 18"):
        load_settings(path)


def test_the_documented_settings_are_all_accepted(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(
        '[switch]\ninstitution_id = "x"\nbroadcast_timeout_seconds = 2\nhealth_check_seconds = 0\n'
        '[[providers]]\nname = "p"\nbase_url = "https://p.example:8443/"\nkind = "suv_v1"\n'
        'capabilities = ["advice"]\npassword_env = "P_PASSWORD"\nweight = 0\nread_timeout = 5\n'
        '[saf]\nin_server = false\nwindows = { p = "22:00-04:00" }\nordered_queues = ["p"]\n'
        '[eft]\nbank_url = "http://127.0.0.1:1"\ndebit_release = "07:30"\n'
    )
    settings = load_settings(path)
    (provider,) = settings.providers
    assert (provider.kind, provider.capabilities, provider.weight) == ("suv_v1", frozenset({"advice"}), 0.0)
    assert settings.serve_runs_worker is False and "p" in settings.saf.windows


def test_serve_with_a_bad_file_says_one_line_and_touches_no_database(tmp_path: Path) -> None:
    path = tmp_path / "xhuma.toml"
    path.write_text(PROVIDER + "concurency = 3\n")
    database = tmp_path / "never.db"
    env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{database}", XHUMA_CONFIG=str(path))
    result = subprocess.run(
        [sys.executable, "-m", "xhuma", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"configuration error: {path}: providers[0].concurency: unknown key"
    assert not database.exists()
