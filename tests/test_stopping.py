"""Stopping cleanly, as real processes: `xhuma demo` and everything it started stop on SIGTERM,
SIGINT and SIGHUP (and its children die with it when it is killed outright); `xhuma serve` on
SIGTERM finishes the request in flight and exits 0; a taken port stops `xhuma serve` at once,
before it touches the database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import write_config
from tests.support import Retailer, Server, free_port, process_env, xhuma

BOUND = 20.0
"""The longest anything here waits for a process to stop or a port to free (a bound, not a
measure: the checks poll and pass as soon as they can)."""

reads_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads children from /proc (Linux)")


def eventually(check: Callable[[], bool], what: str, seconds: float = BOUND) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    """Alive, and not a zombie waiting to be reaped (a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def port_free(port: int) -> bool:
    """Nobody listens on it (SO_REUSEADDR: connections lingering in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Demo:
    """`xhuma demo` as a user runs it, serving on after its sample flows."""

    def __init__(self, folder: Path) -> None:
        env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{folder / 'demo.db'}")
        env.pop("XHUMA_CONFIG", None)
        self.ports = [free_port(), free_port(), free_port()]
        options = ["--port", "--simulator-port", "--voucher-port"]
        args = [item for option, port in zip(options, self.ports, strict=True) for item in (option, str(port))]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "xhuma", "demo", *args],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self.serving = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.serving.wait(60):
            self.process.kill()
            raise AssertionError("the demo did not start serving:\n" + "".join(self.output))
        self.children = children_of(self.process.pid)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("serving;"):
                self.serving.set()

    def clean_up(self) -> None:
        """Whatever a failed test left running: the demo and the children it had."""
        for pid in [self.process.pid, *self.children]:
            if running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait(BOUND)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    started = Demo(tmp_path)
    try:
        yield started
    finally:
        started.clean_up()


@reads_proc
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_stops_the_demo_and_every_process_it_started(demo: Demo, stop: signal.Signals) -> None:
    assert len(demo.children) == 3, demo.children  # two simulated providers and the switch
    assert all(not port_free(port) for port in demo.ports)

    os.kill(demo.process.pid, stop)

    assert demo.process.wait(BOUND) == 0, "".join(demo.output)
    for pid in demo.children:
        eventually(lambda pid=pid: not running(pid), f"child {pid} stopped")  # type: ignore[misc]
    for port in demo.ports:
        eventually(lambda port=port: port_free(port), f"port {port} free")  # type: ignore[misc]


@reads_proc
def test_the_demo_s_children_die_with_it_when_it_is_killed(demo: Demo) -> None:
    os.kill(demo.process.pid, signal.SIGKILL)

    demo.process.wait(BOUND)
    for pid in demo.children:
        eventually(lambda pid=pid: not running(pid), f"child {pid} stopped")  # type: ignore[misc]
    for port in demo.ports:
        eventually(lambda port=port: port_free(port), f"port {port} free")  # type: ignore[misc]


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
