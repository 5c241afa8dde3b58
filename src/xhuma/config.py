"""Configuration: a TOML file (`--config` or `XHUMA_CONFIG`) plus `XHUMA_DATABASE_URL`.

Secrets such as provider passwords may be given as `password_env = "NAME"` so that the file
itself holds none."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from xhuma.providers.base import CAPABILITIES, ProviderConfig
from xhuma.saf.worker import SafSettings
from xhuma.storage.db import database_url

DEFAULT_PROVIDER = ProviderConfig(name="sim", base_url="http://127.0.0.1:8090")


@dataclass(frozen=True)
class EftSettings:
    """The homing bank that inbound EFT is delivered to (none: files are taken in, not sent)."""

    bank_url: str | None = None
    bank_username: str | None = None
    bank_password: str | None = field(default=None, repr=False)
    bank_member_id: str = "000000"
    debit_release: time = time(8, 0)
    """UTC time of day from which the day's debits go to the bank (credits go from midnight)."""
    release_seconds: float = 2.0
    window_seconds: float = 86400.0
    """How long the bank has to acknowledge and report on a message before it is an exception."""
    read_timeout: float = 10.0
    inbox: Path | None = None
    """A directory the server takes files in from (then moves each to accepted/ or refused/)."""
    outbox: Path | None = None
    """Where the server writes UNPAIDS and SECFAIL files, every `output_seconds`, when set."""
    output_seconds: float = 300.0
    sender_code: int = 45001
    clearing_code: int = 9000

    @property
    def bank(self) -> ProviderConfig | None:
        if not self.bank_url:
            return None
        return ProviderConfig(
            name="bank",
            base_url=self.bank_url,
            kind="eft_bank",
            username=self.bank_username,
            password=self.bank_password,
            read_timeout=self.read_timeout,
        )


@dataclass(frozen=True)
class Settings:
    database_url: str
    providers: tuple[ProviderConfig, ...] = (DEFAULT_PROVIDER,)
    institution_id: str = "xhuma"
    institution_name: str = "xhuma switch"
    max_body_bytes: int = 64 * 1024
    credential_cache_seconds: float = 30.0
    saf: SafSettings = field(default_factory=SafSettings)
    serve_runs_worker: bool = True
    """Whether `xhuma serve` also delivers store-and-forward entries (else run `xhuma saf work`)."""
    recovery_interval_seconds: float = 5.0
    broadcast_timeout_seconds: float = 10.0
    """The longest a lookup of an unknown meter waits for the providers it asked."""
    health_check_seconds: float = 10.0
    """How often providers with a `health_url` are polled (0: never)."""
    routing_refresh_days: float = 30.0
    """Meters no provider has spoken about for this long are asked about again (0: never)."""
    eft: EftSettings = field(default_factory=EftSettings)
    source: str | None = None


class ConfigError(ValueError):
    pass


def load_settings(path: str | Path | None = None) -> Settings:
    path = path or os.environ.get("XHUMA_CONFIG")
    if not path:
        return Settings(database_url=database_url())
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    switch = data.get("switch", {})
    providers = tuple(_provider(p, i, path) for i, p in enumerate(data.get("providers", [])))
    settings = Settings(
        database_url=os.environ.get("XHUMA_DATABASE_URL") or switch.get("database_url") or database_url(),
        providers=providers,  # a file names its providers; none named is none (an EFT-only node)
        institution_id=str(switch.get("institution_id", "xhuma")),
        institution_name=str(switch.get("institution_name", "xhuma switch")),
        max_body_bytes=int(switch.get("max_body_bytes", 64 * 1024)),
        credential_cache_seconds=float(switch.get("credential_cache_seconds", 30.0)),
        saf=_saf(data.get("saf", {}), path),
        serve_runs_worker=bool(data.get("saf", {}).get("in_server", True)),
        recovery_interval_seconds=float(switch.get("recovery_interval_seconds", 5.0)),
        broadcast_timeout_seconds=float(switch.get("broadcast_timeout_seconds", 10.0)),
        health_check_seconds=float(switch.get("health_check_seconds", 10.0)),
        routing_refresh_days=float(switch.get("routing_refresh_days", 30.0)),
        eft=_eft(data.get("eft", {}), path),
        source=str(path),
    )
    longest = max((p.deadline_seconds for p in settings.providers), default=0.0)
    if settings.saf.lease_seconds <= longest:
        raise ConfigError(
            f"{path}: saf.lease_seconds ({settings.saf.lease_seconds:g}) must exceed the longest provider "
            f"read_timeout ({longest:g}), or a slow delivery could be taken over while still in flight"
        )
    return settings


def _saf(raw: dict[str, Any], path: str | Path) -> SafSettings:
    windows = {}
    for queue, span in raw.get("windows", {}).items():
        try:
            start, end = (time.fromisoformat(part.strip()) for part in str(span).split("-"))
        except ValueError:
            raise ConfigError(f"{path}: saf.windows.{queue}: expected HH:MM-HH:MM, got {span!r}") from None
        windows[str(queue)] = (start, end)
    defaults = SafSettings()
    return SafSettings(
        concurrency=int(raw.get("concurrency", defaults.concurrency)),
        base_delay_seconds=float(raw.get("base_delay_seconds", defaults.base_delay_seconds)),
        max_delay_seconds=float(raw.get("max_delay_seconds", defaults.max_delay_seconds)),
        max_age_seconds=float(raw.get("max_age_seconds", defaults.max_age_seconds)),
        lease_seconds=float(raw.get("lease_seconds", defaults.lease_seconds)),
        poll_seconds=float(raw.get("poll_seconds", defaults.poll_seconds)),
        ordered_queues=frozenset(raw.get("ordered_queues", ())),
        windows=windows,
    )


def _eft(raw: dict[str, Any], path: str | Path) -> EftSettings:
    password = raw.get("bank_password")
    if "bank_password_env" in raw:
        password = os.environ.get(str(raw["bank_password_env"]))
    try:
        release = time.fromisoformat(str(raw.get("debit_release", "08:00")))
    except ValueError:
        raise ConfigError(f"{path}: eft.debit_release: expected HH:MM, got {raw.get('debit_release')!r}") from None
    return EftSettings(
        bank_url=raw.get("bank_url"),
        bank_username=raw.get("bank_username"),
        bank_password=password,
        bank_member_id=str(raw.get("bank_member_id", "000000")),
        debit_release=release,
        release_seconds=float(raw.get("release_seconds", 2.0)),
        window_seconds=float(raw.get("window_seconds", 86400.0)),
        read_timeout=float(raw.get("read_timeout", 10.0)),
        inbox=Path(str(raw["inbox"])) if raw.get("inbox") else None,
        outbox=Path(str(raw["outbox"])) if raw.get("outbox") else None,
        output_seconds=float(raw.get("output_seconds", 300.0)),
        sender_code=int(raw.get("sender_code", 45001)),
        clearing_code=int(raw.get("clearing_code", 9000)),
    )


def _provider(raw: dict[str, Any], index: int, path: str | Path) -> ProviderConfig:
    where = f"{path}: providers[{index}]"
    try:
        name, base_url = str(raw["name"]), str(raw["base_url"])
    except KeyError as exc:
        raise ConfigError(f"{where}.{exc.args[0]} is required") from None
    password = raw.get("password")
    if "password_env" in raw:
        password = os.environ.get(str(raw["password_env"]))
    capabilities = frozenset(raw.get("capabilities", CAPABILITIES))
    unknown = capabilities - CAPABILITIES
    if unknown:
        raise ConfigError(f"{where}.capabilities: unknown {sorted(unknown)}; known {sorted(CAPABILITIES)}")
    return ProviderConfig(
        name=name,
        base_url=base_url,
        kind=str(raw.get("kind", "ppu_v3")),
        username=raw.get("username"),
        password=password,
        connect_timeout=float(raw.get("connect_timeout", 5.0)),
        read_timeout=float(raw.get("read_timeout", 60.0)),
        max_connections=int(raw.get("max_connections", 256)),
        capabilities=capabilities,
        weight=float(raw.get("weight", 1.0)),
        health_url=raw.get("health_url"),
    )
