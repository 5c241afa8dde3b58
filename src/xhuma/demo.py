"""`xhuma demo`: the whole switch on one machine, as real processes, with one sample purchase
and one voucher.

It starts a simulated PPU provider, a simulated voucher provider and the switch as child
processes, adds a demo credential and a sample voucher catalogue, sends lookup -> purchase ->
confirm through the switch as a retailer would and prints the token and a till slip, then
issues and confirms a voucher and prints it, and keeps everything serving until interrupted."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from xhuma.ppu.examples import retail_message
from xhuma.security.credentials import add_client
from xhuma.storage.db import Database, migrate
from xhuma.vouchers import catalogue, catalogue_store

DEMO_USER, DEMO_PASSWORD, DEMO_CLIENT = "demo", "demo-password", "demo-retailer"


def _wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within {seconds:.0f} s")


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    token = base64.b64encode(f"{DEMO_USER}:{DEMO_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
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


def _issue_vouchers(port: int) -> int:
    """Issue and confirm a gift voucher from the sample catalogue and one routed by its receiver
    (no product, as SUV allows), as a digital channel would."""
    base = f"http://127.0.0.1:{port}/suv/v1"
    for label, routing in VOUCHER_PROVISIONS:
        provision = {
            **retail_message(DEMO_CLIENT, client_name="Demo Retailer"),
            "thirdPartyIdentifiers": [{"institutionId": DEMO_CLIENT, "transactionIdentifier": "DEMO-1"}],
            **routing,
        }
        status, issued = _post(f"{base}/vouchers", provision)
        print(f"voucher issue  HTTP {status}  {label}")
        if status != 201:
            print(json.dumps(issued, indent=2))
            return 1
        confirmation = _cash_confirmation(provision["id"], issued["thirdPartyIdentifiers"], 10000)
        status, _ = _post(f"{base}/vouchers/confirmations", confirmation)
        print(f"confirmation   HTTP {status}")
        voucher = issued["voucher"]
        print(f"voucher        {voucher['code']} (serial {voucher.get('serialNumber', '-')}), {label}")
        for line in voucher.get("redeemInstructions", []):
            print(f"               {line}")
    return 0


def run_demo(port: int, simulator_port: int, voucher_port: int, *, once: bool = False) -> int:
    var = Path("var")
    var.mkdir(exist_ok=True)
    config = var / "demo.toml"
    config.write_text(
        f'[switch]\ninstitution_id = "xhuma"\ninstitution_name = "xhuma demo switch"\n\n'
        f'[[providers]]\nname = "sim"\nkind = "ppu_v3"\nbase_url = "http://127.0.0.1:{simulator_port}"\n'
        f"read_timeout = 15\n\n"
        f'[[providers]]\nname = "vouchers"\nkind = "suv_v1"\nbase_url = "http://127.0.0.1:{voucher_port}"\n'
        f'username = "xhuma"\npassword = "demo"\nread_timeout = 15\n'
        f'receiver_ids = ["{DEMO_RECEIVER}"]\ndefault_product_code = "VCH-STREAM"\n'
    )
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
    children = [
        subprocess.Popen([*command, "simulate", "ppu", "--port", str(simulator_port)], env=env),
        subprocess.Popen(
            [*command, "simulate", "vouchers", "--port", str(voucher_port), "--name", "vouchers"], env=env
        ),
        subprocess.Popen([*command, "serve", "--port", str(port)], env=env),
    ]
    try:
        _wait_healthy(f"http://127.0.0.1:{simulator_port}/health", children[0])
        _wait_healthy(f"http://127.0.0.1:{voucher_port}/health", children[1])
        _wait_healthy(f"http://127.0.0.1:{port}/health", children[2])
        base = f"http://127.0.0.1:{port}/prepaidutility/v3"
        meter = {"meterId": "TST001"}
        lookup = {**_base_message(), "meter": meter}
        status, answer = _post(f"{base}/meterLookups/{lookup['id']}", lookup)
        print(
            f"meter lookup   HTTP {status}: {answer.get('utility', {}).get('name')} "
            f"for {answer.get('customer', {}).get('firstName', '')} {answer.get('customer', {}).get('lastName', '')}"
        )
        amount = (answer.get("minAmount") or {}).get("amount", 10000)
        purchase = {**_base_message(), "meter": meter, "purchaseAmount": {"amount": amount, "currency": "710"}}
        status, bought = _post(f"{base}/tokenPurchases/{purchase['id']}", purchase)
        print(f"token purchase HTTP {status}")
        if status != 201:
            print(json.dumps(bought, indent=2))
            return 1
        confirmation = _cash_confirmation(purchase["id"], bought["thirdPartyIdentifiers"], amount)
        status, _ = _post(f"{base}/tokenPurchases/{purchase['id']}/confirmations/{confirmation['id']}", confirmation)
        print(f"confirmation   HTTP {status}")
        print()
        print(till_slip(bought))
        print()
        if _issue_vouchers(port):
            return 1
        print()
        print(f"switch (retail API)  http://127.0.0.1:{port}/prepaidutility/v3")
        print(f"OpenAPI document     http://127.0.0.1:{port}/openapi.json")
        print(f"health               http://127.0.0.1:{port}/health")
        print(f"switch (vouchers)    http://127.0.0.1:{port}/suv/v1  (products: GET /suv/v1/products)")
        print(f"simulated provider   http://127.0.0.1:{simulator_port}/prepaidutility/v3")
        print(f"voucher provider     http://127.0.0.1:{voucher_port}/suv/v1")
        print(f"demo credential      {DEMO_USER}:{DEMO_PASSWORD} (client id {DEMO_CLIENT})")
        print(f"journal              xhuma tx show {purchase['id']}")
        if once:
            return 0
        print("serving; press Ctrl-C to stop", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a child process stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
