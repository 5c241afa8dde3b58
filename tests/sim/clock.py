"""Virtual time: an event loop whose clock only moves when every task is waiting, and patches
that make the switch's own clocks and ids read from it (so one seed gives one run)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import selectors
import sys
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

EPOCH_US = 1_780_000_000_000_000
"""Virtual time zero, as a wall clock (2026), so stored times look real."""


class _VirtualSelector(selectors.SelectSelector):
    """Never waits: a wait of `timeout` seconds moves the virtual clock on by that much."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("simulation deadlock: every task waits and no timer is set")
        if timeout > 0:
            self.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time: no real waiting, no threads, no network."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def _now_us() -> int:
    loop = asyncio.get_event_loop()
    return EPOCH_US + int(loop.time() * 1e6)


def _rfc3339_now() -> str:
    moment = datetime.fromtimestamp(_now_us() / 1e6, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextlib.contextmanager
def virtual_clock(seed: int) -> Iterator[None]:
    """Patch every `now_us`, `rfc3339_now`, module-level `time` use and `uuid.uuid4` the
    switch reads, for the duration of one run."""
    import xhuma.ppu.examples  # noqa: F401 - imported so its rfc3339_now is patched too
    import xhuma.routing
    import xhuma.security.credentials
    from xhuma.engine import flow
    from xhuma.storage import db

    ids = random.Random(seed ^ 0x5EED)
    patched: list[tuple[Any, str, Any]] = []

    def patch(target: Any, name: str, value: Any) -> None:
        patched.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    originals = {db.now_us: _now_us, flow.rfc3339_now: _rfc3339_now}
    for name, module in list(sys.modules.items()):
        if not name.startswith("xhuma") or module is None:
            continue
        for attribute in ("now_us", "rfc3339_now"):
            value = getattr(module, attribute, None)
            if value in originals:
                patch(module, attribute, originals[value])
    fake_time = types.SimpleNamespace(monotonic=lambda: asyncio.get_event_loop().time(), time=lambda: _now_us() / 1e6)
    patch(xhuma.routing, "time", fake_time)
    patch(xhuma.security.credentials, "time", fake_time)
    patch(uuid, "uuid4", lambda: uuid.UUID(int=ids.getrandbits(128), version=4))
    try:
        yield
    finally:
        for target, name, value in reversed(patched):
            setattr(target, name, value)
