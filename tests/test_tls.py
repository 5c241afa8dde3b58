"""TLS on `xhuma serve`, over real sockets: HTTPS only (plain HTTP and TLS 1.1 refused, TLS 1.2
and 1.3 served), mutual TLS (no client certificate, or one from another CA, fails the
handshake; a credential bound to another certificate's subject is answered 403, the right one
200), and certificates replaced on SIGHUP while the process keeps serving. The certificates are
made here, with `cryptography`."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import Server, free_port, process_env, xhuma
from xhuma.config import ConfigError, load_settings
from xhuma.tls import normal_subject, same_subject, subject_name

BOUND = 20.0
PRODUCTS = "/suv/v1/products"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    serial: int


class Authority:
    """A throw-away CA writing PEM files into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
        self.cert = self._build(self.subject, self.key.public_key(), ca=True)
        self.pem = folder / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _build(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool = False
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, file_name: str, common_name: str, organization: str = "Shop") -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        cert = self._build(subject, key.public_key())
        issued = Issued(self.folder / f"{file_name}.pem", self.folder / f"{file_name}.key", cert.serial_number)
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return issued


@dataclass
class Pki:
    folder: Path
    ca: Authority
    other_ca: Authority
    server: Issued
    rotated_server: Issued
    till_1: Issued
    till_2: Issued
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = Authority(folder, "ca"), Authority(folder, "other-ca")
    return Pki(
        folder,
        ca,
        other,
        ca.issue("server", "xhuma", "Switch"),
        ca.issue("server-rotated", "xhuma-rotated", "Switch"),
        ca.issue("till-1", "till-1"),
        ca.issue("till-2", "till-2"),
        other.issue("stranger", "till-1"),
    )


def client_context(
    pki: Pki, cert: Issued | None = None, *, ca: Path | None = None, version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca or pki.ca.pem)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    return context


def handshake(port: int, context: ssl.SSLContext) -> tuple[str, int]:
    """The negotiated version and the server certificate's serial; the handshake's error if it fails.
    Under TLS 1.3 a refused client certificate is only told after the handshake: a read shows it."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = tls.recv(100)
        if not answer:
            raise ssl.SSLError("closed by the server")
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return str(tls.version()), x509.load_der_x509_certificate(der).serial_number


def refused(port: int, context: ssl.SSLContext) -> bool:
    try:
        handshake(port, context)
    except (ssl.SSLError, ConnectionError):
        return True
    return False


class TlsServer(Server):
    """`xhuma serve` over TLS in its own process, healthy once `health` (a client context) gets 200."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, health: ssl.SSLContext) -> None:
        self.health = health
        port = free_port()
        super().__init__(["serve", "--port", str(port), *args], port, env, log)
        self.url = f"https://127.0.0.1:{port}"

    def health_check(self) -> httpx.Response:
        return httpx.get(f"https://127.0.0.1:{self.port}/health", verify=self.health, timeout=1)

    def get(self, path: str, context: ssl.SSLContext, auth: tuple[str, str] | None = None) -> httpx.Response:
        return httpx.get(self.url + path, verify=context, auth=auth, timeout=10)


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND:.0f} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def env(fresh_database_url: str) -> dict[str, str]:
    environment = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    environment.pop("XHUMA_CONFIG", None)
    return environment


@pytest.fixture
def live_files(pki: Pki, tmp_path: Path) -> Issued:
    """The server's certificate and key as an operator keeps them: files replaced in place."""
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    return Issued(cert, key, pki.server.serial)


@pytest.fixture
def https_server(pki: Pki, env: dict[str, str], live_files: Issued, tmp_path: Path) -> Iterator[TlsServer]:
    """Server-side TLS from the command line's options."""
    args = ["--tls-cert", str(live_files.cert), "--tls-key", str(live_files.key)]
    server = TlsServer(args, env, tmp_path / "https.log", client_context(pki))
    yield server
    server.stop()


@pytest.fixture
def mtls_server(pki: Pki, env: dict[str, str], tmp_path: Path) -> Iterator[TlsServer]:
    """Mutual TLS from the configuration file's [tls] section; till-1 bound to its certificate,
    till-2 bound to till-1's subject (so its own certificate does not match), open unbound."""
    client_ca = tmp_path / "client-ca.pem"
    shutil.copy(pki.ca.pem, client_ca)
    config = tmp_path / "xhuma.toml"
    config.write_text(f'[tls]\ncert = "{pki.server.cert}"\nkey = "{pki.server.key}"\nclient_ca = "{client_ca}"\n')
    env = {**env, "XHUMA_CONFIG": str(config)}
    for username, subject in (("till1", "CN=till-1,O=Shop"), ("till2", "CN=till-1, O=Shop"), ("open", None)):
        bound = ["--cert-subject", subject] if subject else []
        xhuma("clients", "add", "--username", username, "--password", "pw", "--client-id", username, *bound, env=env)
    server = TlsServer([], env, tmp_path / "mtls.log", client_context(pki, pki.till_1))
    yield server
    server.stop()


def test_plain_http_is_refused_on_the_tls_port(https_server: TlsServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{https_server.port}/health", timeout=5)
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/"), answer


def lenient_server(pki: Pki) -> int:
    """A one-connection server that still speaks TLS 1.0 and 1.1: proof that the old client works."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with listener, listener.accept()[0] as raw, context.wrap_socket(raw, server_side=True) as tls:
            tls.recv(100)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    return int(listener.getsockname()[1])


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_is_refused_and_1_2_and_1_3_are_served(pki: Pki, https_server: TlsServer) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(pki.ca.pem)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    assert handshake(lenient_server(pki), old)[0] == "TLSv1.1"
    assert refused(https_server.port, old)
    assert handshake(https_server.port, client_context(pki, version=ssl.TLSVersion.TLSv1_2))[0] == "TLSv1.2"
    assert handshake(https_server.port, client_context(pki, version=ssl.TLSVersion.TLSv1_3))[0] == "TLSv1.3"
    assert handshake(https_server.port, client_context(pki))[0] == "TLSv1.3"  # preferred when both can
    assert https_server.get("/health", client_context(pki)).status_code == 200


def test_tls_1_2_offers_only_ecdhe_aead_ciphers(pki: Pki, https_server: TlsServer) -> None:
    weak = client_context(pki, version=ssl.TLSVersion.TLSv1_2)
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0")
    assert handshake(lenient_server(pki), weak)[0] == "TLSv1.2"
    assert refused(https_server.port, weak)


def test_sighup_replaces_the_certificate_and_keeps_serving(
    pki: Pki, https_server: TlsServer, live_files: Issued
) -> None:
    context = client_context(pki)
    assert handshake(https_server.port, context)[1] == pki.server.serial
    with httpx.Client(base_url=https_server.url, verify=context) as kept:
        assert kept.get("/health").status_code == 200
        shutil.copy(pki.rotated_server.cert, live_files.cert)
        shutil.copy(pki.rotated_server.key, live_files.key)
        https_server.process.send_signal(signal.SIGHUP)
        eventually(
            lambda: handshake(https_server.port, context)[1] == pki.rotated_server.serial,
            "new connections see the new certificate",
        )
        assert kept.get("/health").status_code == 200  # the open connection goes on
    assert https_server.process.poll() is None
    live_files.key.write_text("not a key\n")  # a broken replacement changes nothing
    https_server.process.send_signal(signal.SIGHUP)
    eventually(lambda: "certificates not reloaded" in https_server.log.read_text(), "the failed reload is logged")
    assert handshake(https_server.port, context)[1] == pki.rotated_server.serial
    assert https_server.get("/health", context).status_code == 200


def test_mutual_tls_requires_a_certificate_from_the_client_ca(pki: Pki, mtls_server: TlsServer) -> None:
    assert refused(mtls_server.port, client_context(pki))  # no client certificate
    assert refused(mtls_server.port, client_context(pki, pki.stranger))  # same subject, another CA
    assert refused(mtls_server.port, client_context(pki, pki.stranger, version=ssl.TLSVersion.TLSv1_2))
    assert not refused(mtls_server.port, client_context(pki, pki.till_2))


def test_a_credential_bound_to_a_subject_needs_that_certificate(pki: Pki, mtls_server: TlsServer) -> None:
    till_1, till_2 = client_context(pki, pki.till_1), client_context(pki, pki.till_2)
    assert mtls_server.get(PRODUCTS, till_1, ("till1", "pw")).status_code == 200
    refusal = mtls_server.get(PRODUCTS, till_2, ("till1", "pw"))
    assert refusal.status_code == 403, refusal.text
    assert mtls_server.get(PRODUCTS, till_2, ("till2", "pw")).status_code == 403  # bound to till-1's subject
    assert mtls_server.get(PRODUCTS, till_1, ("till2", "pw")).status_code == 200  # spaces do not matter
    assert mtls_server.get(PRODUCTS, till_2, ("open", "pw")).status_code == 200  # unbound: any valid certificate
    assert mtls_server.get(PRODUCTS, till_1, ("till1", "wrong")).status_code == 401


def test_sighup_replaces_the_client_ca(pki: Pki, mtls_server: TlsServer, tmp_path: Path) -> None:
    shutil.copy(pki.other_ca.pem, tmp_path / "client-ca.pem")
    mtls_server.process.send_signal(signal.SIGHUP)
    eventually(lambda: not refused(mtls_server.port, client_context(pki, pki.stranger)), "the new CA is trusted")
    assert refused(mtls_server.port, client_context(pki, pki.till_1))  # the old CA is not, any more
    assert mtls_server.process.poll() is None


def test_a_bound_credential_is_refused_without_tls(pki: Pki, env: dict[str, str], tmp_path: Path) -> None:
    xhuma("clients", "add", "--username", "till1", "--password", "pw", "--client-id", "c1",
          "--cert-subject", "CN=till-1,O=Shop", env=env)  # fmt: skip
    port = free_port()
    with (tmp_path / "plain.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "xhuma", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(healthy, "the plain server answers")
        assert httpx.get(url + PRODUCTS, auth=("till1", "pw")).status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_tls_settings_are_checked_when_the_configuration_is_read(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "xhuma.toml"
    cases = {
        f'cert = "{tmp_path / "missing.pem"}"\nkey = "{pki.server.key}"': "tls.cert: certificate",
        f'cert = "{pki.server.cert}"\nkey = "{pki.till_1.key}"': "tls.key: certificate",
        f'cert = "{pki.server.cert}"': "tls.key: a certificate and its key go together",
        f'cert = "{pki.server.cert}"\nkey = "{pki.server.key}"\nclient_ca = "{pki.server.key}"': "tls.client_ca:",
        'certificate = "x"': "tls.certificate: unknown key",
    }
    for body, expected in cases.items():
        config.write_text(f"[tls]\n{body}\n")
        with pytest.raises(ConfigError) as caught:
            load_settings(config)
        message = str(caught.value)
        assert expected in message and "\n" not in message, message
    config.write_text(f'[tls]\ncert = "{pki.server.cert}"\nkey = "{pki.server.key}"\n')
    tls = load_settings(config).tls
    assert tls is not None and tls.cert == pki.server.cert and tls.client_ca is None
    result = xhuma("serve", "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.till_1.key), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configuration error: --tls-key: certificate"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_subjects_are_written_and_compared_in_rfc_4514_form() -> None:
    subject = ((("countryName", "ZA"),), (("organizationName", "Shop, Inc"),), (("commonName", "till-1"),))
    assert subject_name(subject) == "CN=till-1,O=Shop\\, Inc,C=ZA"
    assert normal_subject("cn = till-1 , o=Shop") == "CN=till-1,O=Shop"
    assert same_subject("CN=till-1,O=Shop", "CN=till-1,O=Shop")
    assert not same_subject("CN=till-1,O=Shop", "CN=till-1,O=shop")
    assert not same_subject("CN=till-1,O=Shop", None)


def test_the_demo_serves_https_with_a_throw_away_ca(tmp_path: Path) -> None:
    env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    env.pop("XHUMA_CONFIG", None)
    port, sim_port, voucher_port = free_port(), free_port(), free_port()
    ports = ["--port", str(port), "--simulator-port", str(sim_port), "--voucher-port", str(voucher_port)]
    demo = subprocess.Popen(
        [sys.executable, "-m", "xhuma", "demo", "--tls", *ports],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        output = "".join(lines)
        assert "token purchase HTTP 201" in output and "voucher issue  HTTP 201" in output, output
        assert f"curl --cacert var/tls/ca.pem https://127.0.0.1:{port}/health" in output, output
        trusted = ssl.create_default_context(cafile=tmp_path / "var" / "tls" / "ca.pem")
        assert httpx.get(f"https://127.0.0.1:{port}/health", verify=trusted, timeout=10).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"https://127.0.0.1:{port}/health", timeout=10)  # the system's CAs do not know it
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
    finally:
        demo.terminate()
        demo.wait(timeout=30)
