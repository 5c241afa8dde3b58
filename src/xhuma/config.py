"""Configuration: a TOML file (`--config` or `XHUMA_CONFIG`) plus `XHUMA_DATABASE_URL`.

The file is checked whole against the structs below before anything starts: an unknown key (a
misspelling), a value of the wrong type or out of range, a duplicate provider name or a
`base_url` that is not a URL is one line naming the file, the key and the reason. Secrets such
as provider passwords may be given as `password_env = "NAME"` so that the file holds none."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from xhuma.config_outbound import ClientOAuth, ClientTls, Outbound, SettingError, is_http_url, outbound, verify_key
from xhuma.finance.processes import Finance, Process, ProcessError
from xhuma.finance.processes import check as check_finance
from xhuma.providers import VOUCHER_KINDS
from xhuma.providers.base import CAPABILITIES, ProviderConfig
from xhuma.saf.worker import SafSettings
from xhuma.security.credentials import Network, parse_networks
from xhuma.storage.db import database_url
from xhuma.tls import TlsError, TlsFiles, server_context

DEFAULT_PROVIDER = ProviderConfig(name="sim", base_url="http://127.0.0.1:8090")

Seconds = Annotated[float, Meta(gt=0)]
SecondsOrOff = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=1)]
PROVIDER_KINDS = ("ppu_v3", "suv_v1")
Window = Annotated[str, Meta(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$", description="HH:MM-HH:MM, UTC")]
TimeOfDay = Annotated[str, Meta(pattern=r"^\d{2}:\d{2}(:\d{2})?$", description="HH:MM, UTC")]


class _Switch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    database_url: str | None = None
    institution_id: Annotated[str, Meta(min_length=1)] = "xhuma"
    institution_name: Annotated[str, Meta(min_length=1)] = "xhuma switch"
    max_body_bytes: Count = 64 * 1024
    drain_seconds: Seconds = 10.0
    read_timeout_seconds: Seconds = 30.0
    admin_networks: list[str] = []
    close_on_unlisted_address: bool = False
    lockout_seconds: Seconds = 300.0
    credential_cache_seconds: SecondsOrOff = 30.0
    recovery_interval_seconds: Seconds = 5.0
    broadcast_timeout_seconds: Seconds = 10.0
    health_check_seconds: SecondsOrOff = 10.0
    routing_refresh_days: SecondsOrOff = 30.0


class _Provider(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Annotated[str, Meta(min_length=1)]
    base_url: str
    kind: str = "ppu_v3"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    connect_timeout: Seconds = 5.0
    read_timeout: Seconds = 60.0
    max_connections: Count = 256
    capabilities: list[str] | None = None
    weight: Annotated[float, Meta(ge=0)] = 1.0
    health_url: str | None = None
    receiver_ids: list[Annotated[str, Meta(min_length=1, max_length=40)]] = []
    default_product_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    tls: ClientTls | None = None
    oauth: ClientOAuth | None = None
    signing_key: Annotated[str, Meta(min_length=1)] | None = None


class _Saf(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    in_server: bool = True
    concurrency: Count = 64
    base_delay_seconds: Seconds = 0.5
    max_delay_seconds: Seconds = 60.0
    max_age_seconds: Seconds = 24 * 3600.0
    lease_seconds: Seconds = 90.0
    poll_seconds: Seconds = 0.2
    ordered_queues: list[str] = []
    windows: dict[str, Window] = {}


class _Eft(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    bank_url: str | None = None
    bank_username: str | None = None
    bank_password: str | None = None
    bank_password_env: str | None = None
    bank_member_id: str = "000000"
    debit_release: TimeOfDay = "08:00"
    release_seconds: Seconds = 2.0
    window_seconds: Seconds = 86400.0
    read_timeout: Seconds = 10.0
    inbox: str | None = None
    outbox: str | None = None
    output_seconds: Seconds = 300.0
    sender_code: Annotated[int, Meta(ge=0, le=99999)] = 45001
    clearing_code: Annotated[int, Meta(ge=0, le=99999)] = 9000
    max_file_bytes: Count = 64 * 1024 * 1024
    bank_tls: ClientTls | None = None
    bank_oauth: ClientOAuth | None = None
    bank_signing_key: Annotated[str, Meta(min_length=1)] | None = None
    bank_verify_key: Annotated[str, Meta(min_length=1)] | None = None


class _OAuth(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    token_seconds: Seconds = 3600.0


class _Tls(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cert: Annotated[str, Meta(min_length=1)] | None = None
    key: Annotated[str, Meta(min_length=1)] | None = None
    client_ca: Annotated[str, Meta(min_length=1)] | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    switch: _Switch = _Switch()
    providers: list[_Provider] = []
    saf: _Saf = _Saf()
    eft: _Eft = _Eft()
    oauth: _OAuth = _OAuth()
    tls: _Tls = _Tls()
    finance: Finance = Finance()


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
    max_file_bytes: int = 64 * 1024 * 1024
    """The largest EFT file `POST /admin/eft/files` takes (a bigger one is answered 413)."""
    bank_security: Outbound = field(default_factory=Outbound)
    """TLS, OAuth2 and message signing towards the bank (as for a provider)."""
    bank_verify_key: Path | None = None
    """The bank's public key: its status reports must carry a valid `x-jwt-signature` (None: not checked)."""

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
            tls=self.bank_security.tls,
            oauth=self.bank_security.oauth,
            signing_key=self.bank_security.signing_key,
        )


@dataclass(frozen=True)
class Settings:
    database_url: str
    providers: tuple[ProviderConfig, ...] = (DEFAULT_PROVIDER,)
    institution_id: str = "xhuma"
    institution_name: str = "xhuma switch"
    max_body_bytes: int = 64 * 1024
    drain_seconds: float = 10.0
    """Once told to stop, how long `xhuma serve` lets requests in flight finish, and then how long
    its store-and-forward worker has to settle the deliveries it holds."""
    read_timeout_seconds: float = 30.0
    """How long a client has to send a whole request (headers and body) from its first byte, or
    from the connection's opening: a slower one (a slowloris) is cut off."""
    admin_networks: tuple[Network, ...] = ()
    """Where the operator API (/admin) may be called from (none: anywhere), whatever the credential."""
    close_on_unlisted_address: bool = False
    """A request from outside the admin networks or its credential's networks gets no answer: the
    connection is closed (as Electrum does), instead of a 403."""
    lockout_seconds: float = 300.0
    """How long a username stays locked after five failed logins within a minute."""
    token_seconds: float = 3600.0
    """How long an OAuth2 access token is valid."""
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
    tls: TlsFiles | None = None
    """HTTPS on `xhuma serve`'s listener (and mutual TLS with a client CA); None: plain HTTP."""
    processes: tuple[Process, ...] = ()
    """Reconciliation processes (`[[finance.processes]]`, see `xhuma.finance.processes`)."""
    finance: Finance = field(default_factory=Finance)
    """The whole `[finance]` table: processes, fees and accounts (`xhuma.finance.fees`)."""
    finance_intake_seconds: float = 60.0
    """How often `xhuma serve` takes files from the processes' inboxes (`finance.intake_seconds`)."""
    source: str | None = None

    def process(self, name: str) -> Process | None:
        return next((p for p in self.processes if p.name == name), None)


class ConfigError(ValueError):
    """One line: the file, the key and the reason."""


def load_settings(path: str | Path | None = None) -> Settings:
    path = path or os.environ.get("XHUMA_CONFIG")
    if not path:
        return Settings(database_url=database_url())
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        file = msgspec.convert(data, _File)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_key_and_reason(str(exc))}") from None
    _check(file, path)
    switch = file.switch
    settings = Settings(
        database_url=os.environ.get("XHUMA_DATABASE_URL") or switch.database_url or database_url(),
        providers=tuple(
            _provider(p, f"{path}: providers[{n}]") for n, p in enumerate(file.providers)
        ),  # none named is none (an EFT-only node)
        institution_id=switch.institution_id,
        institution_name=switch.institution_name,
        max_body_bytes=switch.max_body_bytes,
        drain_seconds=switch.drain_seconds,
        read_timeout_seconds=switch.read_timeout_seconds,
        admin_networks=_networks(switch.admin_networks, f"{path}: switch.admin_networks"),
        close_on_unlisted_address=switch.close_on_unlisted_address,
        lockout_seconds=switch.lockout_seconds,
        token_seconds=file.oauth.token_seconds,
        credential_cache_seconds=switch.credential_cache_seconds,
        saf=_saf(file.saf),
        serve_runs_worker=file.saf.in_server,
        recovery_interval_seconds=switch.recovery_interval_seconds,
        broadcast_timeout_seconds=switch.broadcast_timeout_seconds,
        health_check_seconds=switch.health_check_seconds,
        routing_refresh_days=switch.routing_refresh_days,
        eft=_eft(file.eft, path),
        tls=_tls(file.tls, path),
        processes=tuple(_outboxes(file.finance.processes, path)),
        finance=file.finance,
        finance_intake_seconds=file.finance.intake_seconds,
        source=str(path),
    )
    longest = max((p.deadline_seconds for p in settings.providers), default=0.0)
    if settings.saf.lease_seconds <= longest:
        raise ConfigError(
            f"{path}: saf.lease_seconds ({settings.saf.lease_seconds:g}) must exceed the longest provider "
            f"read_timeout ({longest:g}), or a slow delivery could be taken over while still in flight"
        )
    return settings


def _key_and_reason(message: str) -> str:
    """msgspec's "Expected `float`, got `str` - at `$.providers[0].read_timeout`" as
    "providers[0].read_timeout: expected `float`, got `str`"."""
    reason, _, where = message.rpartition(" - at `$")
    if not reason:
        reason, where = message, ""
    key = where.rstrip("`").lstrip(".")
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", reason)
    if unknown:
        key = f"{key}.{unknown.group(1)}" if key else unknown.group(1)
        reason = "unknown key"
    missing = re.fullmatch(r"Object missing required field `(.+)`", reason)
    if missing:
        key = f"{key}.{missing.group(1)}" if key else missing.group(1)
        reason = "is required"
    reason = reason[:1].lower() + reason[1:]
    return f"{key}: {reason}" if key else reason


def _check(file: _File, path: str | Path) -> None:
    """What a struct cannot say: names unique, URLs that are URLs, windows that are times."""
    seen: set[str] = set()
    for index, provider in enumerate(file.providers):
        where = f"{path}: providers[{index}]"
        if provider.name in seen:
            raise ConfigError(f"{where}.name: a second provider named {provider.name!r}")
        seen.add(provider.name)
        if provider.kind not in PROVIDER_KINDS:
            raise ConfigError(f"{where}.kind: unknown kind {provider.kind!r}; known: {', '.join(PROVIDER_KINDS)}")
        if provider.kind not in VOUCHER_KINDS and (provider.receiver_ids or provider.default_product_code):
            key = "receiver_ids" if provider.receiver_ids else "default_product_code"
            raise ConfigError(f'{where}.{key}: only a voucher provider (kind = "suv_v1") has receivers')
        unknown = sorted(set(provider.capabilities or ()) - CAPABILITIES)
        if unknown:
            known = ", ".join(sorted(CAPABILITIES))
            raise ConfigError(f"{where}.capabilities: unknown {', '.join(unknown)}; known: {known}")
        for key in ("base_url", "health_url"):
            value = getattr(provider, key)
            if value is not None and not is_http_url(value):
                raise ConfigError(f"{where}.{key}: {value!r} is not an http:// or https:// URL")
    if file.eft.bank_url is not None and not is_http_url(file.eft.bank_url):
        raise ConfigError(f"{path}: eft.bank_url: {file.eft.bank_url!r} is not an http:// or https:// URL")
    for queue, span in file.saf.windows.items():
        try:
            _window(span)
        except ValueError:
            raise ConfigError(f"{path}: saf.windows.{queue}: {span!r} is not a time of day HH:MM-HH:MM") from None
    try:
        time.fromisoformat(file.eft.debit_release)
    except ValueError:
        raise ConfigError(f"{path}: eft.debit_release: {file.eft.debit_release!r} is not a time of day") from None
    try:
        check_finance(file.finance, seen)
    except ProcessError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _outboxes(processes: list[Process], path: str | Path) -> list[Process]:
    """Each process with its outbox made absolute (relative to the configuration file's folder),
    refused when it names something that is not a folder. It is created when first written."""
    resolved = []
    for index, process in enumerate(processes):
        if process.outbox is not None:
            folder = Path(path).parent / Path(process.outbox).expanduser()
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{path}: finance.processes[{index}].outbox: {folder} is not a folder")
            process = msgspec.structs.replace(process, outbox=str(folder.absolute()))
        resolved.append(process)
    return resolved


def _window(span: str) -> tuple[time, time]:
    start, end = (time.fromisoformat(part.strip()) for part in span.split("-"))
    return start, end


def _saf(raw: _Saf) -> SafSettings:
    return SafSettings(
        concurrency=raw.concurrency,
        base_delay_seconds=raw.base_delay_seconds,
        max_delay_seconds=raw.max_delay_seconds,
        max_age_seconds=raw.max_age_seconds,
        lease_seconds=raw.lease_seconds,
        poll_seconds=raw.poll_seconds,
        ordered_queues=frozenset(raw.ordered_queues),
        windows={queue: _window(span) for queue, span in raw.windows.items()},
    )


def _networks(values: list[str], where: str) -> tuple[Network, ...]:
    try:
        return parse_networks(values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _eft(raw: _Eft, path: str | Path) -> EftSettings:
    password = os.environ.get(raw.bank_password_env) if raw.bank_password_env else raw.bank_password
    try:
        security = outbound(
            raw.bank_url,
            raw.bank_tls,
            raw.bank_oauth,
            raw.bank_signing_key,
            names=("bank_tls", "bank_oauth", "bank_signing_key"),
        )
        bank_verify_key = verify_key(raw.bank_verify_key, "bank_verify_key")
    except SettingError as exc:
        raise ConfigError(f"{path}: eft.{exc.key}: {exc}") from None
    return EftSettings(
        bank_url=raw.bank_url,
        bank_username=raw.bank_username,
        bank_password=password,
        bank_member_id=raw.bank_member_id,
        debit_release=time.fromisoformat(raw.debit_release),
        release_seconds=raw.release_seconds,
        window_seconds=raw.window_seconds,
        read_timeout=raw.read_timeout,
        inbox=Path(raw.inbox) if raw.inbox else None,
        outbox=Path(raw.outbox) if raw.outbox else None,
        output_seconds=raw.output_seconds,
        sender_code=raw.sender_code,
        clearing_code=raw.clearing_code,
        max_file_bytes=raw.max_file_bytes,
        bank_security=security,
        bank_verify_key=bank_verify_key,
    )


def tls_files(cert: str | Path | None, key: str | Path | None, client_ca: str | Path | None) -> TlsFiles | None:
    """The listener's TLS files, checked: readable, and loading as a certificate and key pair
    (and a CA); None without a certificate or key. TlsError names the setting at fault."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsError("client_ca", "a client CA needs a server certificate and key too")
        return None
    if cert is None or key is None:
        raise TlsError("cert" if cert is None else "key", "a certificate and its key go together; one is missing")
    files = TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca is not None else None)
    server_context(files)
    return files


def _tls(raw: _Tls, path: str | Path) -> TlsFiles | None:
    try:
        return tls_files(raw.cert, raw.key, raw.client_ca)
    except TlsError as exc:
        raise ConfigError(f"{path}: tls.{exc.which}: {exc}") from None


def _provider(raw: _Provider, where: str) -> ProviderConfig:
    password = os.environ.get(raw.password_env) if raw.password_env else raw.password
    try:
        security = outbound(raw.base_url, raw.tls, raw.oauth, raw.signing_key)
    except SettingError as exc:
        raise ConfigError(f"{where}.{exc.key}: {exc}") from None
    return ProviderConfig(
        name=raw.name,
        base_url=raw.base_url,
        kind=raw.kind,
        username=raw.username,
        password=password,
        connect_timeout=raw.connect_timeout,
        read_timeout=raw.read_timeout,
        max_connections=raw.max_connections,
        capabilities=CAPABILITIES if raw.capabilities is None else frozenset(raw.capabilities),
        weight=raw.weight,
        health_url=raw.health_url,
        receiver_ids=tuple(raw.receiver_ids),
        default_product_code=raw.default_product_code,
        tls=security.tls,
        oauth=security.oauth,
        signing_key=security.signing_key,
    )
