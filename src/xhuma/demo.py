"""`xhuma demo`: the whole switch on one machine, as real processes, with one sample purchase
and one voucher.

It starts a simulated PPU provider, a simulated voucher provider and the switch as child
processes, adds a demo credential and a sample voucher catalogue, sends lookup -> purchase ->
confirm through the switch as a retailer would and prints the token and a till slip, then
issues and confirms a voucher and prints it, and keeps everything serving until interrupted.
With `--tls` the switch serves HTTPS only, with a certificate from a throw-away CA it makes under
var/tls/ (ca.pem is what a client trusts: `curl --cacert var/tls/ca.pem ...`).

Stopping: SIGTERM (`kill`), SIGINT (Ctrl-C) and SIGHUP (a closed terminal) each stop the demo
and every process it started. Each child runs in a session of its own (so a terminal's signal
reaches the demo, which stops them in order, not the children at random); the demo sends each
child's process group SIGTERM, waits up to STOP_SECONDS, then sends SIGKILL; a second signal
kills them at once. On Linux each child is also asked to get SIGTERM when the demo dies, so a
demo killed outright (SIGKILL) leaves no server holding a port."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from xhuma.ppu.examples import retail_message
from xhuma.security.credentials import add_client
from xhuma.storage.db import Database, migrate
from xhuma.vouchers import catalogue, catalogue_store

DEMO_USER, DEMO_PASSWORD, DEMO_CLIENT = "demo", "demo-password", "demo-retailer"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_SECONDS = 10.0
"""How long the children have to stop after SIGTERM before they are killed (the switch's own
drain is shorter: see DRAIN_SECONDS)."""
DRAIN_SECONDS = 5.0
TLS_FOLDER = Path("var") / "tls"
"""Where `xhuma demo --tls` writes its throw-away CA (ca.pem) and the switch's certificate."""


class Stopped(Exception):
    """A stop signal arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ChildFailed(RuntimeError):
    """A child process exited or never became healthy."""


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def _die_with_parent() -> Callable[[], None] | None:
    """For Popen's preexec_fn on Linux: the child gets SIGTERM when the demo dies, however it
    dies (PR_SET_PDEATHSIG); elsewhere None (the signal handlers still stop the children)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not after
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before the request took effect
            os._exit(1)

    return preexec


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child and whatever it started (its session's process group)."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)


def stop_children(children: list[subprocess.Popen[bytes]], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM to each child's group, up to `seconds` for all to exit, then SIGKILL; a stop
    signal meanwhile means now."""

    def now(_signum: int, _frame: FrameType | None) -> None:
        for child in children:
            _signal_group(child, signal.SIGKILL)

    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, now)
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], seconds: float = 30.0, context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChildFailed(f"{url} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:
                if response.status == 200:
                    return
        except (OSError, http.client.HTTPException):  # refused, reset, or not answering yet
            pass
        time.sleep(0.1)
    raise ChildFailed(f"{url} did not become healthy within {seconds:.0f} s")


def make_demo_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A new throw-away CA and a server certificate it signed for 127.0.0.1, ::1 and localhost,
    valid 30 days: (ca.pem, server.pem, server.key), the key readable by its owner only."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xhuma demo CA (throw-away)")])

    def certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost")] + [
                x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    server_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xhuma demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(certificate(ca_name, ca_key, True).public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(certificate(server_name, server_key, False).public_bytes(serialization.Encoding.PEM))
    key_pem.touch(mode=0o600)
    key_pem.chmod(0o600)
    key_pem.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


def _post(url: str, body: dict[str, Any], context: ssl.SSLContext | None = None) -> tuple[int, dict[str, Any]]:
    token = base64.b64encode(f"{DEMO_USER}:{DEMO_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _base_message() -> dict[str, Any]:
    return retail_message(DEMO_CLIENT, client_name="Demo Retailer")


def till_slip(purchase: dict[str, Any]) -> str:
    """A plain receipt, 40 columns wide, as a point-of-sale would print it."""
    width = 40
    utility = purchase.get("utility", {})
    lines = ["=" * width, (utility.get("name") or "Prepaid electricity").center(width), "=" * width]
    lines.append(f"Meter      {purchase['meter']['meterId']}")
    customer = purchase.get("customer", {})
    if customer:
        lines.append(f"Customer   {customer.get('firstName', '')} {customer.get('lastName', '')}".rstrip())
    for token in purchase.get("tokens", []):
        digits = token["token"]
        grouped = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
        lines += ["-" * width, f"{token['tokenType']} token", grouped.center(width)]
        amount = token.get("amount", {})
        value = amount.get("amount", 0) + (amount.get("tax") or 0)
        lines.append(f"Units {token['units']:>10}   Value R {value / 100:>9.2f}")
        if token.get("receiptNum"):
            lines.append(f"Receipt    {token['receiptNum']}")
    lines += ["-" * width, f"Ref {purchase['id']}", "=" * width]
    return "\n".join(lines)


DEMO_RECEIVER = "6001"
"""The voucher provider's receiver institution id: a provision without a product names it."""
VOUCHER_PROVISIONS = (
    ("Gift card R100 (by product)", {"product": {"productId": "GIFT-100"}}),
    (
        "R75 voucher (by receiver)",
        {
            "receiver": {"id": DEMO_RECEIVER, "name": "Demo Vouchers"},
            "amounts": {"requestAmount": {"amount": 7500, "currency": "710"}},
        },
    ),
)


def _cash_confirmation(request_id: str, identifiers: list[Any], amount: int) -> dict[str, Any]:
    """The confirmation advice a till sends once the customer has paid in cash."""
    return {
        "id": str(uuid.uuid4()),
        "requestId": request_id,
        "time": _base_message()["time"],
        "thirdPartyIdentifiers": identifiers,
        "tenders": [{"tenderType": "CASH", "amount": {"amount": amount, "currency": "710"}}],
    }


def _issue_vouchers(origin: str, context: ssl.SSLContext | None) -> int:
    """Issue and confirm a gift voucher from the sample catalogue and one routed by its receiver
    (no product, as SUV allows), as a digital channel would."""
    base = f"{origin}/suv/v1"
    for label, routing in VOUCHER_PROVISIONS:
        provision = {
            **retail_message(DEMO_CLIENT, client_name="Demo Retailer"),
            "thirdPartyIdentifiers": [{"institutionId": DEMO_CLIENT, "transactionIdentifier": "DEMO-1"}],
            **routing,
        }
        status, issued = _post(f"{base}/vouchers", provision, context)
        print(f"voucher issue  HTTP {status}  {label}")
        if status != 201:
            print(json.dumps(issued, indent=2))
            return 1
        confirmation = _cash_confirmation(provision["id"], issued["thirdPartyIdentifiers"], 10000)
        status, _ = _post(f"{base}/vouchers/confirmations", confirmation, context)
        print(f"confirmation   HTTP {status}")
        voucher = issued["voucher"]
        print(f"voucher        {voucher['code']} (serial {voucher.get('serialNumber', '-')}), {label}")
        for line in voucher.get("redeemInstructions", []):
            print(f"               {line}")
    return 0


def run_demo(port: int, simulator_port: int, voucher_port: int, *, once: bool = False, tls: bool = False) -> int:
    """Run the demo; 0 after `once`, or when stopped by a signal. With `tls`, the switch serves
    HTTPS with a certificate from a throw-away CA made under var/tls/."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _raise_stopped)
    children: list[subprocess.Popen[bytes]] = []
    try:
        return _run(port, simulator_port, voucher_port, children, once=once, tls=tls)
    except Stopped as stop:
        if stop.signum == signal.SIGHUP:
            _quiet()  # the terminal is gone: writing to it would fail
        _say(f"{stop}: stopping the demo and the processes it started")
        return 0
    except ChildFailed as exc:
        _say(f"xhuma demo: {exc}")
        return 1
    finally:
        while True:
            try:
                stop_children(children)
                break
            except Stopped:  # arrived before stop_children took the signals over: stop anyway
                continue


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _quiet() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)


def _run(
    port: int,
    simulator_port: int,
    voucher_port: int,
    children: list[subprocess.Popen[bytes]],
    *,
    once: bool,
    tls: bool = False,
) -> int:
    var = Path("var")
    var.mkdir(exist_ok=True)
    config = var / "demo.toml"
    config.write_text(
        f'[switch]\ninstitution_id = "xhuma"\ninstitution_name = "xhuma demo switch"\n'
        f"drain_seconds = {DRAIN_SECONDS}\n\n"
        f'[[providers]]\nname = "sim"\nkind = "ppu_v3"\nbase_url = "http://127.0.0.1:{simulator_port}"\n'
        f"read_timeout = 15\n\n"
        f'[[providers]]\nname = "vouchers"\nkind = "suv_v1"\nbase_url = "http://127.0.0.1:{voucher_port}"\n'
        f'username = "xhuma"\npassword = "demo"\nread_timeout = 15\n'
        f'receiver_ids = ["{DEMO_RECEIVER}"]\ndefault_product_code = "VCH-STREAM"\n'
    )
    origin, context = f"http://127.0.0.1:{port}", None
    if tls:
        ca, cert, key = make_demo_certificates(TLS_FOLDER)
        with config.open("a") as file:
            file.write(f'\n[tls]\ncert = "{cert.resolve()}"\nkey = "{key.resolve()}"\n')
        origin, context = f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=ca)
    db = Database()
    migrate(db.engine)
    db.run_sync(add_client(DEMO_USER, DEMO_PASSWORD, DEMO_CLIENT, "Demo Retailer"))
    sample = catalogue.products_from_csv(
        (Path(__file__).parent / "vouchers" / "data" / "sample_catalogue.csv").read_text()
    )
    db.run_sync(catalogue_store.import_products(DEMO_CLIENT, sample, "demo"))
    db.engine.dispose()

    env = {**os.environ, "XHUMA_CONFIG": str(config.resolve())}
    command = [sys.executable, "-m", "xhuma"]
    preexec = _die_with_parent()
    for args in (
        ["simulate", "ppu", "--port", str(simulator_port)],
        ["simulate", "vouchers", "--port", str(voucher_port), "--name", "vouchers"],
        ["serve", "--port", str(port)],
    ):
        children.append(subprocess.Popen([*command, *args], env=env, start_new_session=True, preexec_fn=preexec))
    _wait_healthy(f"http://127.0.0.1:{simulator_port}/health", children[0])
    _wait_healthy(f"http://127.0.0.1:{voucher_port}/health", children[1])
    _wait_healthy(f"{origin}/health", children[2], context=context)
    base = f"{origin}/prepaidutility/v3"
    meter = {"meterId": "TST001"}
    lookup = {**_base_message(), "meter": meter}
    status, answer = _post(f"{base}/meterLookups/{lookup['id']}", lookup, context)
    print(
        f"meter lookup   HTTP {status}: {answer.get('utility', {}).get('name')} "
        f"for {answer.get('customer', {}).get('firstName', '')} {answer.get('customer', {}).get('lastName', '')}"
    )
    amount = (answer.get("minAmount") or {}).get("amount", 10000)
    purchase = {**_base_message(), "meter": meter, "purchaseAmount": {"amount": amount, "currency": "710"}}
    status, bought = _post(f"{base}/tokenPurchases/{purchase['id']}", purchase, context)
    print(f"token purchase HTTP {status}")
    if status != 201:
        print(json.dumps(bought, indent=2))
        return 1
    confirmation = _cash_confirmation(purchase["id"], bought["thirdPartyIdentifiers"], amount)
    status, _ = _post(
        f"{base}/tokenPurchases/{purchase['id']}/confirmations/{confirmation['id']}", confirmation, context
    )
    print(f"confirmation   HTTP {status}")
    print()
    print(till_slip(bought))
    print()
    if _issue_vouchers(origin, context):
        return 1
    print()
    print(f"switch (retail API)  {origin}/prepaidutility/v3")
    print(f"OpenAPI document     {origin}/openapi.json")
    print(f"health               {origin}/health")
    print(f"switch (vouchers)    {origin}/suv/v1  (products: GET /suv/v1/products)")
    if tls:
        print(f"try it               curl --cacert {TLS_FOLDER / 'ca.pem'} {origin}/health")
    print(f"simulated provider   http://127.0.0.1:{simulator_port}/prepaidutility/v3")
    print(f"voucher provider     http://127.0.0.1:{voucher_port}/suv/v1")
    print(f"demo credential      {DEMO_USER}:{DEMO_PASSWORD} (client id {DEMO_CLIENT})")
    print(f"journal              xhuma tx show {purchase['id']}")
    if once:
        return 0
    print("serving; press Ctrl-C to stop", flush=True)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    _say("a child process stopped; shutting down")
    return 1
