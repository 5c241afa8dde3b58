"""Helpers for tests that drive real processes: free ports, process start-up, PPU messages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from xhuma.ppu.examples import retail_message

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def xhuma(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `xhuma` command as a user would, in its own process."""
    result = subprocess.run(
        [sys.executable, "-m", "xhuma", *args], env=env or process_env(), capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"xhuma {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


class Server:
    """A real server process, stopped when the test session ends."""

    def __init__(self, args: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "xhuma", *args], env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        self.wait_healthy()

    def health_check(self) -> httpx.Response:
        return httpx.get(self.url + "/health", timeout=1)

    def wait_healthy(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.health_check().status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server on {self.url} not healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def serve_with_credentials(env: dict[str, str], folder: Path, credentials: Iterable[tuple[str, str, str]]) -> Server:
    """`xhuma serve` on a free port, after adding each (username, password, role) as a credential
    whose client id is its username."""
    for username, password, role in credentials:
        added = ("--username", username, "--password", password, "--client-id", username, "--role", role)
        xhuma("clients", "add", *added, env=env)
    port = free_port()
    return Server(["serve", "--port", str(port)], port, env, folder / "switch.log")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def base_message(client_id: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("thirdPartyIdentifiers", [{"institutionId": client_id, "transactionIdentifier": "POS-1"}])
    return retail_message(client_id, client_name="Test Retailer", terminal_id="TERM0001", **fields)


class Retailer:
    """A point-of-sale speaking PPU v3 to the switch over HTTP."""

    def __init__(self, base_url: str, username: str, password: str, client_id: str) -> None:
        self.client_id = client_id
        self.http = httpx.Client(base_url=base_url + "/prepaidutility/v3", auth=(username, password), timeout=60)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(path, json=body)

    def lookup(self, meter_id: str) -> tuple[dict[str, Any], httpx.Response]:
        message = base_message(self.client_id, meter={"meterId": meter_id})
        return message, self.post(f"/meterLookups/{message['id']}", message)

    def purchase(self, meter_id: str, amount: int | str) -> tuple[dict[str, Any], httpx.Response]:
        message = base_message(
            self.client_id, meter={"meterId": meter_id}, purchaseAmount={"amount": amount, "currency": "710"}
        )
        return message, self.post(f"/tokenPurchases/{message['id']}", message)

    def retry(self, original: dict[str, Any], *, new_id_in_body: bool = True) -> httpx.Response:
        body = {**original, "id": new_id() if new_id_in_body else original["id"]}
        return self.post(f"/tokenPurchases/{original['id']}/retry", body)

    def advice(
        self, kind: str, purchase_id: str, identifiers: list[Any], **fields: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        message = {
            "id": new_id(),
            "requestId": purchase_id,
            "time": now(),
            "thirdPartyIdentifiers": identifiers,
            **fields,
        }
        return message, self.post(f"/tokenPurchases/{purchase_id}/{kind}/{message['id']}", message)

    def confirm(self, purchase_id: str, identifiers: list[Any]) -> tuple[dict[str, Any], httpx.Response]:
        tenders = [{"tenderType": "CASH", "amount": {"amount": 10000, "currency": "710"}}]
        return self.advice("confirmations", purchase_id, identifiers, tenders=tenders)

    def reverse(
        self, purchase_id: str, identifiers: list[Any], reason: str = "CANCELLED"
    ) -> tuple[dict[str, Any], httpx.Response]:
        return self.advice("reversals", purchase_id, identifiers, reversalReason=reason)
