"""Stopping cleanly, as real processes: `xhuma serve` on SIGTERM finishes the request in flight
and exits 0; a taken port stops `xhuma serve` at once, before it touches the database."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.conftest import write_config
from tests.support import Retailer, Server, free_port, process_env, xhuma

BOUND = 20.0
"""The longest anything here waits for a process to stop or a port to free (a bound, not a
measure: the checks poll and pass as soon as they can)."""


def eventually(check: Callable[[], bool], what: str, seconds: float = BOUND) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.05)


class Gate:
    """A provider in front of the simulator that holds each request until released: a slow
    provider whose slowness the test controls."""

    def __init__(self, upstream: str) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                gate.arrived.set()
                gate.release.wait(BOUND)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.post(upstream + self.path, content=body, headers=headers, timeout=BOUND)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_sigterm_lets_the_request_in_flight_finish_and_serve_exits_0(
    fresh_database_url: str, simulator: Server, tmp_path: Path
) -> None:
    gate = Gate(simulator.url)
    env = process_env(
        XHUMA_DATABASE_URL=fresh_database_url,
        XHUMA_CONFIG=str(write_config(tmp_path / "xhuma.toml", gate.url, read_timeout=BOUND)),
        SIM_PASSWORD="sim-secret",
    )
    xhuma("clients", "add", "--username", "till", "--password", "till-pw", "--client-id", "retailer-1", env=env)
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    answers: list[httpx.Response] = []
    try:
        retailer = Retailer(server.url, "till", "till-pw", "retailer-1")
        asking = threading.Thread(target=lambda: answers.append(retailer.lookup("TST001")[1]))
        asking.start()
        assert gate.arrived.wait(BOUND), "the lookup never reached the provider"

        server.process.send_signal(signal.SIGTERM)
        eventually(lambda: refuses_connections(port), "the switch stopped accepting connections")
        assert server.process.poll() is None  # still finishing the lookup
        gate.release.set()
        asking.join(BOUND)

        (answer,) = answers
        assert answer.status_code == 201, answer.text
        assert answer.json()["meter"]["meterId"] == "TST001"
        assert server.process.wait(BOUND) == 0, server.log.read_text()
    finally:
        gate.close()
        server.stop()


def test_a_taken_port_stops_serve_at_once_naming_the_port_before_the_database(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{database}")
    env.pop("XHUMA_CONFIG", None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "xhuma", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=BOUND,
        )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"xhuma serve: port {port} on 127.0.0.1 is already in use"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not database.exists()
