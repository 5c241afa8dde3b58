"""Locking a username after repeated failed logins: pure, with the clock passed in.

Five failures for one username within a minute lock that username (and only it) for a
configured time; a success clears its count. Kept per process: on several nodes an attacker
gets five tries per node per minute, still far too few to guess a password."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_TRACKED = 100_000
"""Usernames tracked at once; beyond it the oldest failures are forgotten (bounded memory)."""


@dataclass
class Lockout:
    max_failures: int = 5
    window_seconds: float = 60.0
    lock_seconds: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, username: str, now: float) -> bool:
        until = self._locked_until.get(username)
        if until is None:
            return False
        if now >= until:
            del self._locked_until[username]
            return False
        return True

    def failed(self, username: str, now: float) -> bool:
        """Count a failure; True when it locks the username."""
        if len(self._failures) >= MAX_TRACKED and username not in self._failures:
            self._failures.pop(next(iter(self._failures)))
        recent = self._failures.setdefault(username, deque())
        recent.append(now)
        while recent and recent[0] <= now - self.window_seconds:
            recent.popleft()
        if len(recent) >= self.max_failures:
            self._locked_until[username] = now + self.lock_seconds
            del self._failures[username]
            return True
        return False

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)
