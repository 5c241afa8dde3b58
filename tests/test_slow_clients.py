"""Slow clients are cut off, and every route that takes a body has a limit (real `xhuma serve`,
raw sockets for the slow clients)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Server, process_env, serve_with_credentials

READ_SECONDS = 1
GIVE_UP = 20.0
"""How long a test drips bytes before it decides the server never cut it off."""


@pytest.fixture
def server(fresh_database_url: str, tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "xhuma.toml"
    config.write_text(
        f"[switch]\nread_timeout_seconds = {READ_SECONDS}\nmax_body_bytes = 2048\n\n[eft]\nmax_file_bytes = 4096\n"
    )
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    running = serve_with_credentials(env, tmp_path, [("ops", "ops-pw", "admin"), ("bank", "bank-pw", "bank")])
    yield running
    running.stop()


def dripped_until_cut(port: int, opening: bytes, drip: bytes) -> bool:
    """Send `opening`, then one byte of `drip` at a time every 0.2 s: whether the server closed
    the connection before GIVE_UP seconds (it answers nothing: a half-sent request gets no reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP) as conn:
        conn.sendall(opening)
        conn.settimeout(0.2)
        deadline = time.monotonic() + GIVE_UP
        for byte in drip * 1000:
            if time.monotonic() > deadline:
                return False
            try:
                if conn.recv(1024) == b"":
                    return True
            except TimeoutError:
                pass
            except ConnectionResetError:
                return True
            try:
                conn.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return True
    return False


def test_a_client_dripping_its_headers_is_cut_off(server: Server) -> None:
    assert dripped_until_cut(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X-Slow: yes\r\n")
    assert "no whole request within" in server.log.read_text()


def test_a_client_dripping_its_body_is_cut_off(server: Server) -> None:
    opening = b"POST /admin/saf/1/resolve HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    assert dripped_until_cut(server.port, opening, b'{"note": "slow"}')


def test_a_client_that_opens_a_connection_and_sends_nothing_is_cut_off(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP) as conn:
        assert conn.recv(1024) == b""  # closed by the server, not by our timeout (which would raise)


def test_a_prompt_client_keeps_its_connection_for_several_requests(server: Server) -> None:
    with httpx.Client(base_url=server.url, auth=("ops", "ops-pw")) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            assert client.get("/admin/saf").status_code == 200
            time.sleep(READ_SECONDS / 2)


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/admin/saf/1/resolve", "application/json"),
        ("PUT", "/admin/routing/weights", "application/json"),
        ("PUT", "/admin/routing/preferences/Tshwane", "application/json"),
    ],
)
def test_operator_bodies_beyond_the_limit_are_refused_413_naming_the_body(
    server: Server, method: str, path: str, content_type: str
) -> None:
    big = b'{"note": "' + b"x" * 3000 + b'"}'
    answer = httpx.request(
        method, server.url + path, content=big, headers={"content-type": content_type}, auth=("ops", "ops-pw")
    )
    assert answer.status_code == 413, answer.text
    assert answer.json() == {"error": "the body exceeds 2048 bytes", "field": "body"}


def test_a_chunked_operator_body_beyond_the_limit_is_refused_too(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    answer = httpx.put(server.url + "/admin/routing/weights", content=chunks(), auth=("ops", "ops-pw"))
    assert answer.status_code == 413, answer.text


def test_a_bank_report_beyond_the_limit_is_refused_413(server: Server) -> None:
    answer = httpx.post(
        server.url + "/inbound/credit-transfer-response", content=b"{" + b" " * 3000 + b"}", auth=("bank", "bank-pw")
    )
    assert answer.status_code == 413, answer.text
    assert answer.json() == {"message": "the body exceeds 2048 bytes"}


def test_an_eft_file_beyond_its_limit_is_refused_413_and_nothing_is_taken(server: Server) -> None:
    answer = httpx.post(server.url + "/admin/eft/files?name=big.eft", content=b"0" * 5000, auth=("ops", "ops-pw"))
    assert answer.status_code == 413, answer.text
    assert answer.json()["field"] == "body"
    files = httpx.get(server.url + "/admin/audit", params={"action": "eft.ingest"}, auth=("ops", "ops-pw"))
    assert files.status_code == 200 and files.json() == []
