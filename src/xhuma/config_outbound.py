"""Outbound security settings of a provider (`[providers.tls]`, `[providers.oauth]`,
`signing_key`) or of the bank (`[eft.bank_tls]`, `[eft.bank_oauth]`, `bank_signing_key`,
`bank_verify_key`), as the TOML file gives them: their strict structs and their check, which
loads every file named (a CA bundle, a certificate and key that go together, a P-256 key) so
that a bad one stops the start with the key at fault, not the first request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from xhuma.providers.oauth_client import OAuthClientSettings
from xhuma.security.message_signing import KeyFileError, load_signing_key, load_verify_keys
from xhuma.tls import ClientTlsFiles, TlsError, client_context

NonEmpty = Annotated[str, Meta(min_length=1)]


class ClientTls(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    ca: NonEmpty | None = None
    cert: NonEmpty | None = None
    key: NonEmpty | None = None


class ClientOAuth(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    token_url: str
    client_id: NonEmpty
    client_secret: str | None = None
    client_secret_env: NonEmpty | None = None
    scope: NonEmpty | None = None
    username: NonEmpty | None = None
    password: str | None = None
    password_env: NonEmpty | None = None
    client_auth: Literal["basic", "form"] = "basic"


class SettingError(ValueError):
    """A setting that cannot be used: `key` is its dotted name under the section checked."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Outbound:
    tls: ClientTlsFiles | None = None
    oauth: OAuthClientSettings | None = None
    signing_key: Path | None = None


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def outbound(
    base_url: str | None,
    tls: ClientTls | None,
    oauth: ClientOAuth | None,
    signing_key: str | None,
    *,
    names: tuple[str, str, str] = ("tls", "oauth", "signing_key"),
) -> Outbound:
    """The checked settings; SettingError names the key (`names`: how this section calls them)."""
    tls_name, oauth_name, key_name = names
    files = None
    if tls is not None:
        if base_url is not None and not base_url.startswith("https://"):
            raise SettingError(tls_name, f"TLS settings need an https:// URL, not {base_url!r}")
        files = ClientTlsFiles(*(Path(p) if p is not None else None for p in (tls.ca, tls.cert, tls.key)))
        try:
            client_context(files)
        except TlsError as exc:
            raise SettingError(f"{tls_name}.{exc.which}", str(exc)) from None
    settings = _oauth(oauth, oauth_name) if oauth is not None else None
    key = None
    if signing_key is not None:
        key = Path(signing_key)
        try:
            load_signing_key(key)
        except KeyFileError as exc:
            raise SettingError(key_name, str(exc)) from None
    return Outbound(files, settings, key)


def verify_key(value: str | None, name: str) -> Path | None:
    """A public key to verify signatures with, loaded once to be sure it is one."""
    if value is None:
        return None
    try:
        load_verify_keys(Path(value))
    except KeyFileError as exc:
        raise SettingError(name, str(exc)) from None
    return Path(value)


def _secret(value: str | None, env: str | None, name: str, where: str) -> str | None:
    if env is None:
        return value
    if value is not None:
        raise SettingError(f"{where}.{name}_env", f"give {name} or {name}_env, not both")
    found = os.environ.get(env)
    if found is None:
        raise SettingError(f"{where}.{name}_env", f"the environment variable {env} is not set")
    return found


def _oauth(raw: ClientOAuth, where: str) -> OAuthClientSettings:
    if not is_http_url(raw.token_url):
        raise SettingError(f"{where}.token_url", f"{raw.token_url!r} is not an http:// or https:// URL")
    secret = _secret(raw.client_secret, raw.client_secret_env, "client_secret", where)
    if secret is None:
        raise SettingError(f"{where}.client_secret", "is required (or client_secret_env)")
    password = _secret(raw.password, raw.password_env, "password", where)
    if (raw.username is None) != (password is None):
        missing = "username" if raw.username is None else "password"
        raise SettingError(f"{where}.{missing}", "the password grant needs a username and a password")
    return OAuthClientSettings(raw.token_url, raw.client_id, secret, raw.scope, raw.username, password, raw.client_auth)
