"""Outbound security, as real processes over real sockets: xhuma purchasing from a simulated
PPU provider that serves HTTPS only (with xhuma's CA bundle it works; without, nothing is sent
and nothing bought), that requires a client certificate (xhuma's configured one is taken; none
is refused before anything is read), that requires OAuth2 bearer tokens from its own token
endpoint (one fetch for many purchases, concurrent ones included; a new one after half the
lifetime; a revoked token refetched once and the purchase sent once more, bought once), and
that verifies `x-jwt-signature` over every body. Then the bank's signed status reports: taken
when the signature holds, refused 401 and journalled when the body was tampered with or the
signature is missing. The simulators check all of this with their own code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import Retailer, Server, free_port, process_env, xhuma
from tests.test_eft_delivery import SAMPLES, _rows, _wait
from tests.test_tls import Authority, Issued
from xhuma.config import ConfigError, load_settings
from xhuma.domain.outcomes import Outcome
from xhuma.eft.delivery import EftOperation
from xhuma.providers.base import ProviderConfig, UpstreamAnswer, UpstreamCall
from xhuma.providers.http import JsonHttpAdapter
from xhuma.tls import ClientTlsFiles

DIGEST_CLAIM = "electrum.co.za/content-digest"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def key_pair(folder: Path, name: str) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    pair = KeyPair(folder / f"{name}.key", folder / f"{name}-public.pem")
    pair.private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pair.public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pair


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Authority
    clients_ca: Authority
    provider: Issued
    xhuma_client: Issued
    signing: KeyPair
    bank: KeyPair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("outbound-pki")
    ca, clients = Authority(folder, "provider-ca"), Authority(folder, "clients-ca")
    return Pki(
        folder,
        ca,
        clients,
        ca.issue("provider", "sim.provider", "Provider"),
        clients.issue("xhuma-client", "xhuma", "Switch"),
        key_pair(folder, "xhuma-signing"),
        key_pair(folder, "bank-signing"),
    )


class Simulator(Server):
    """`xhuma simulate ppu` with security options; over HTTPS when given a certificate."""

    def __init__(self, folder: Path, pki: Pki, *options: str) -> None:
        port = free_port()
        self.tls = "--tls-cert" in options
        self.pki = pki
        args = ["simulate", "ppu", "--port", str(port), "--seed", "11", *options]
        super().__init__(args, port, process_env(), folder / f"sim-{port}.log")
        self.base = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    def client(self) -> httpx.Client:
        if not self.tls:
            return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        context = ssl.create_default_context(cafile=self.pki.ca.pem)
        context.load_cert_chain(self.pki.xhuma_client.cert, self.pki.xhuma_client.key)
        return httpx.Client(base_url=f"https://127.0.0.1:{self.port}", verify=context, timeout=10)

    def health_check(self) -> httpx.Response:
        with self.client() as http:
            return http.get("/health", timeout=1)

    def security(self) -> dict[str, Any]:
        with self.client() as http:
            found: dict[str, Any] = http.get("/_sim/security").json()
            return found

    def sold(self) -> list[str]:
        with self.client() as http:
            return [p["id"] for p in http.get("/_sim/ledger").json()["purchases"]]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in reversed(started):
        server.stop()


def start_switch(
    database_url: str, folder: Path, name: str, provider_url: str, extra: str, servers: list[Server]
) -> Retailer:
    """`xhuma serve` with one provider and the provider's extra settings (TOML under [[providers]])."""
    config = folder / f"{name}.toml"
    config.write_text(
        '[switch]\ninstitution_id = "xhuma-test"\n\n'
        f'[[providers]]\nname = "sim"\nbase_url = "{provider_url}"\nread_timeout = 5\n{extra}'
    )
    env = process_env(XHUMA_DATABASE_URL=database_url, XHUMA_CONFIG=str(config), SIM_SECRET="sim-secret")
    xhuma("clients", "add", "--username", name, "--password", "till-pass", "--client-id", f"shop-{name}", env=env)
    port = free_port()
    servers.append(Server(["serve", "--port", str(port)], port, env, folder / f"{name}.log"))
    return Retailer(f"http://127.0.0.1:{port}", name, "till-pass", f"shop-{name}")


def buy(retailer: Retailer, meter: str = "12345678901") -> httpx.Response:
    return retailer.purchase(meter, 10000)[1]


def test_https_to_a_provider_works_with_the_configured_ca_bundle_and_sends_nothing_without(
    fresh_database_url: str, tmp_path: Path, pki: Pki, servers: list[Server]
) -> None:
    sim = Simulator(tmp_path, pki, "--tls-cert", str(pki.provider.cert), "--tls-key", str(pki.provider.key))
    servers.append(sim)
    trusted = start_switch(
        fresh_database_url, tmp_path, "trusting", sim.base, f'[providers.tls]\nca = "{pki.ca.pem}"\n', servers
    )
    untrusted = start_switch(fresh_database_url, tmp_path, "system", sim.base, "", servers)

    answer = buy(trusted)
    assert answer.status_code == 201, answer.text
    assert answer.json()["tokens"]
    assert len(sim.sold()) == 1
    answer = buy(untrusted)
    # The handshake failed on the provider's certificate: nothing was sent, so nothing bought,
    # and the retailer hears the provider was unavailable (not "unknown, reverse it").
    assert answer.status_code == 503, answer.text
    assert answer.json()["errorType"] == "UPSTREAM_UNAVAILABLE"
    assert len(sim.sold()) == 1


def test_mutual_tls_the_configured_client_certificate_is_taken_and_none_is_refused(
    fresh_database_url: str, tmp_path: Path, pki: Pki, servers: list[Server]
) -> None:
    sim = Simulator(
        tmp_path,
        pki,
        *("--tls-cert", str(pki.provider.cert), "--tls-key", str(pki.provider.key)),
        *("--client-ca", str(pki.clients_ca.pem)),
    )
    servers.append(sim)
    tls = f'[providers.tls]\nca = "{pki.ca.pem}"\n'
    with_cert = tls + f'cert = "{pki.xhuma_client.cert}"\nkey = "{pki.xhuma_client.key}"\n'
    holder = start_switch(fresh_database_url, tmp_path, "holder", sim.base, with_cert, servers)
    without = start_switch(fresh_database_url, tmp_path, "without", sim.base, tls, servers)

    answer = buy(holder)
    assert answer.status_code == 201, answer.text
    assert len(sim.sold()) == 1
    answer = buy(without)
    assert answer.status_code == 503, answer.text
    assert len(sim.sold()) == 1


def test_oauth_tokens_are_fetched_once_refreshed_at_half_life_and_refetched_once_when_revoked(
    fresh_database_url: str, tmp_path: Path, pki: Pki, servers: list[Server]
) -> None:
    lifetime = 6.0
    sim = Simulator(tmp_path, pki, "--oauth-client", "xhuma:sim-secret", "--token-seconds", str(lifetime))
    servers.append(sim)
    oauth = (
        f'[providers.oauth]\ntoken_url = "{sim.base}/_sim/oauth/token"\nclient_id = "xhuma"\n'
        'client_secret_env = "SIM_SECRET"\n'
    )
    retailer = start_switch(fresh_database_url, tmp_path, "oauth", sim.base, oauth, servers)
    without = start_switch(fresh_database_url, tmp_path, "basic", sim.base, "", servers)

    # Eight purchases at once on first use wait on one token fetch.
    answers: list[httpx.Response] = []
    first_started = time.monotonic()
    threads = [threading.Thread(target=lambda: answers.append(buy(retailer))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    for _ in range(4):
        assert buy(retailer).status_code == 201
    counts = sim.security()
    assert (counts["token_requests"], counts["bearer_refused"]) == (1, 0)

    # Past half the lifetime (but well within it) the next purchase comes with a new token.
    time.sleep(max(0.0, first_started + lifetime / 2 + 0.5 - time.monotonic()))
    assert buy(retailer).status_code == 201
    counts = sim.security()
    assert (counts["token_requests"], counts["bearer_refused"]) == (2, 0)

    # The provider revokes its tokens: the 401 makes xhuma fetch one more and send once more.
    with sim.client() as http:
        http.post("/_sim/oauth/revoke")
    answer = buy(retailer)
    assert answer.status_code == 201, answer.text
    counts = sim.security()
    assert (counts["token_requests"], counts["bearer_refused"]) == (3, 1)
    assert len(sim.sold()) == 14  # once each: the refused attempt bought nothing

    # A switch without the OAuth settings is refused (401: a failure, nothing bought).
    answer = buy(without)
    assert answer.status_code not in (201, 504), answer.text
    assert len(sim.sold()) == 14


def test_every_request_carries_a_signature_over_its_exact_body(
    fresh_database_url: str, tmp_path: Path, pki: Pki, servers: list[Server]
) -> None:
    sim = Simulator(tmp_path, pki, "--verify-signatures-with", str(pki.signing.public))
    servers.append(sim)
    retailer = start_switch(
        fresh_database_url, tmp_path, "signer", sim.base, f'signing_key = "{pki.signing.private}"\n', servers
    )
    _, looked_up = retailer.lookup("12345678901")
    assert looked_up.status_code == 201, looked_up.text
    bought = [retailer.purchase("12345678901", 10000) for _ in range(3)]
    assert [a.status_code for _, a in bought] == [201] * 3
    # An advice goes by store-and-forward, through the same client.
    purchase, answer = bought[0]
    _, advised = retailer.confirm(purchase["id"], answer.json()["thirdPartyIdentifiers"])
    assert advised.status_code == 202, advised.text
    _wait(lambda: sim.security()["signatures_verified"] == 5)
    counts = sim.security()
    assert (counts["signatures_verified"], counts["signatures_refused"]) == (5, 0)

    # The simulator does check the digest: a signature over another body is refused.
    body = b'{"id": "tampered"}'
    now = int(time.time())
    other = base64.b64encode(hashlib.sha256(b"{}").digest()).decode()
    claims = {DIGEST_CLAIM: other, "iat": now, "exp": now + 60, "jti": "x"}
    signature = jwt.encode(claims, pki.signing.private.read_bytes(), algorithm="ES256")
    with sim.client() as http:
        answer = http.post("/prepaidutility/v3/tokenPurchases/x", content=body, headers={"x-jwt-signature": signature})
    assert answer.status_code == 401
    assert sim.security()["signatures_refused"] == 1


def test_the_banks_signed_status_reports_are_taken_and_a_tampered_one_refused(
    fresh_database_url: str, tmp_path: Path, pki: Pki, servers: list[Server]
) -> None:
    switch_port, bank_port = free_port(), free_port()
    # The bank is rotating its key: the file holds its old key and its new one, which signs.
    verify_keys = tmp_path / "bank-keys.pem"
    verify_keys.write_bytes(key_pair(tmp_path, "old-bank").public.read_bytes() + pki.bank.public.read_bytes())
    config = tmp_path / "xhuma.toml"
    config.write_text(
        "[saf]\nbase_delay_seconds = 0.1\nmax_delay_seconds = 0.5\n\n"
        f'[eft]\nbank_url = "http://127.0.0.1:{bank_port}"\nbank_member_id = "250655"\n'
        f'release_seconds = 0.5\nread_timeout = 2\nbank_verify_key = "{verify_keys}"\n'
        f'bank_signing_key = "{pki.signing.private}"\n'
    )
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    bank_credential = ["--username", "bank", "--password", "bank-pw", "--client-id", "bank", "--role", "bank"]
    xhuma("clients", "add", *bank_credential, env=env)
    bank = Server(
        ["simulate", "bank", "--port", str(bank_port), "--xhuma-url", f"http://127.0.0.1:{switch_port}"]
        + ["--signing-key", str(pki.bank.private), "--seed", "3"],
        bank_port,
        process_env(),
        tmp_path / "bank.log",
    )
    servers.append(bank)
    servers.append(Server(["serve", "--port", str(switch_port)], switch_port, env, tmp_path / "switch.log"))
    xhuma("eft", "ingest", str(SAMPLES / "payments-sameday-credits-12.eft"), env=env)

    _wait(lambda: _rows(env, 1) and all(r["state"] in ("accepted", "unpaid") for r in _rows(env, 1)), 60)

    url = f"http://127.0.0.1:{switch_port}/inbound/credit-transfer-response"
    report = json.dumps({"schema": "PaymentStatusReport"}).encode()
    now = int(time.time())
    claims = {DIGEST_CLAIM: base64.b64encode(hashlib.sha256(report).digest()).decode(), "iat": now, "exp": now + 60}
    signature = jwt.encode(claims, pki.bank.private.read_bytes(), algorithm="ES256")
    tampered = report.replace(b"PaymentStatusReport", b"PaymentStatusReporT")
    answer = httpx.post(url, content=tampered, auth=("bank", "bank-pw"), headers={"x-jwt-signature": signature})
    assert answer.status_code == 401, answer.text
    assert "not the SHA-256 of the body" in answer.json()["detail"]
    unsigned = httpx.post(url, content=report, auth=("bank", "bank-pw"))
    assert unsigned.status_code == 401
    stranger = jwt.encode(claims, pki.signing.private.read_bytes(), algorithm="ES256")
    answer = httpx.post(url, content=report, auth=("bank", "bank-pw"), headers={"x-jwt-signature": stranger})
    assert answer.status_code == 401 and "not the expected key's" in answer.json()["detail"]
    assert (
        httpx.post(url, content=report, auth=("bank", "bank-pw"), headers={"x-jwt-signature": signature}).status_code
        == 400
    )  # past the signature: not a whole report

    out = xhuma("tx", "rejected", "--json", "--limit", "1000", env=env).stdout
    refused = [json.loads(line) for line in out.splitlines()]
    reasons = sorted(r["reason"] for r in refused if r["interface"] == "eft")
    assert reasons == [
        "no x-jwt-signature header",
        "x-jwt-signature does not verify: the signature is not the expected key's",
        f"x-jwt-signature: the {DIGEST_CLAIM} claim is not the SHA-256 of the body",
    ]
    assert all(r["status"] == 401 for r in refused if r["interface"] == "eft")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[providers.tls]\nca = "missing.pem"\n', "providers[0].tls.ca: CA bundle missing.pem cannot be read"),
        ('[providers.tls]\ncert = "{cert}"\n', "providers[0].tls.key: a certificate and its key go together"),
        ('[providers.tls]\ncert = "{cert}"\nkey = "{other_key}"\n', "providers[0].tls.key: certificate"),
        ('[providers.tls]\nca = "{ca}"\nfoo = 1\n', "providers[0].tls.foo: unknown key"),
        (
            '[providers.oauth]\ntoken_url = "nope"\nclient_id = "x"\nclient_secret = "y"\n',
            "providers[0].oauth.token_url",
        ),
        (
            '[providers.oauth]\ntoken_url = "https://a/t"\nclient_id = "x"\n',
            "providers[0].oauth.client_secret: is required",
        ),
        (
            '[providers.oauth]\ntoken_url = "https://a/t"\nclient_secret = "y"\n',
            "providers[0].oauth.client_id: is required",
        ),
        (
            '[providers.oauth]\ntoken_url = "https://a/t"\nclient_id = "x"\nclient_secret_env = "NOT_SET_ANYWHERE"\n',
            "providers[0].oauth.client_secret_env: the environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            '[providers.oauth]\ntoken_url = "https://a/t"\nclient_id = "x"\nclient_secret = "y"\nusername = "u"\n',
            "providers[0].oauth.password: the password grant needs",
        ),
        ('signing_key = "{cert}"\n', "providers[0].signing_key: "),
        ('signing_key = "{public}"\n', "providers[0].signing_key: "),
    ],
)
def test_bad_outbound_settings_are_refused_naming_the_key(tmp_path: Path, pki: Pki, extra: str, key: str) -> None:
    files = {
        "cert": pki.xhuma_client.cert,
        "other_key": pki.provider.key,
        "ca": pki.ca.pem,
        "public": pki.signing.public,
    }
    config = tmp_path / "xhuma.toml"
    config.write_text(f'[[providers]]\nname = "p"\nbase_url = "https://127.0.0.1:9"\n{extra.format(**files)}')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert f"{config}: {key}" in str(raised.value)


def test_tls_settings_need_an_https_url_and_the_bank_keys_are_checked(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "xhuma.toml"
    config.write_text(
        f'[[providers]]\nname = "p"\nbase_url = "http://127.0.0.1:9"\n[providers.tls]\nca = "{pki.ca.pem}"\n'
    )
    with pytest.raises(ConfigError, match=r"providers\[0\]\.tls: TLS settings need an https:// URL"):
        load_settings(config)
    config.write_text(f'[eft]\nbank_url = "http://127.0.0.1:9"\nbank_verify_key = "{pki.signing.private}"\n')
    with pytest.raises(ConfigError, match=r"eft\.bank_verify_key: .* is not a PEM public key"):
        load_settings(config)
    config.write_text(f'[eft]\nbank_url = "http://127.0.0.1:9"\n[eft.bank_tls]\nca = "{pki.ca.pem}"\n')
    with pytest.raises(ConfigError, match=r"eft\.bank_tls: TLS settings need an https:// URL"):
        load_settings(config)
    config.write_text(
        f'[eft]\nbank_url = "https://127.0.0.1:9"\nbank_verify_key = "{pki.bank.public}"\n'
        f'bank_signing_key = "{pki.signing.private}"\n[eft.bank_tls]\nca = "{pki.ca.pem}"\n'
    )
    eft = load_settings(config).eft
    assert eft.bank_verify_key == pki.bank.public
    assert eft.bank is not None and eft.bank.tls is not None and eft.bank.signing_key == pki.signing.private


def test_a_client_certificate_refused_under_tls13_is_known_never_delivered(tmp_path: Path, pki: Pki) -> None:
    """Under TLS 1.3 a server refuses a client certificate with an alert after the client's side
    of the handshake is done, so the request has been written when the refusal arrives; the
    server never read it, and xhuma classes it as not delivered. OpenSSL's own server here (the
    simulators' asyncio server closes without sending that alert)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command")
    port = free_port()
    args = [openssl, "s_server", "-quiet", "-tls1_3", "-accept", str(port), "-www", "-Verify", "1"]
    args += ["-cert", str(pki.provider.cert), "-key", str(pki.provider.key), "-CAfile", str(pki.clients_ca.pem)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _listening(port), 20)

        def send(tls: ClientTlsFiles) -> UpstreamAnswer:
            adapter = JsonHttpAdapter(ProviderConfig(name="p", base_url=f"https://127.0.0.1:{port}", tls=tls))

            async def once() -> UpstreamAnswer:
                try:
                    return await adapter.send(
                        UpstreamCall(EftOperation("probe", 200), "GET", adapter.base_url + "/", b"")
                    )
                finally:
                    await adapter.close()

            return asyncio.run(once())

        refused = send(ClientTlsFiles(ca=pki.ca.pem))
        assert (refused.delivered, refused.outcome) == (False, Outcome.FAILED), refused
        assert "CERTIFICATE_REQUIRED" in (refused.transport_error or "")
        taken = send(ClientTlsFiles(pki.ca.pem, pki.xhuma_client.cert, pki.xhuma_client.key))
        assert (taken.delivered, taken.status) == (True, 200), taken
    finally:
        server.terminate()
        server.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
