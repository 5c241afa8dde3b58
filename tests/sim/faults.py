"""Faults, all drawn from the run's one random stream: database faults injected at the engine
and DB-API level (a failed statement, a COMMIT that fails before committing, a COMMIT that
commits and then loses its acknowledgement), and what a provider does with each request."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

DB_FAULTS = ("statement", "commit_before", "commit_lost")
PROVIDER_FAULTS = ("slow", "drop_after", "refuse", "503", "500", "hollow")
"""`hollow`: the provider sells, and answers 201 without the tokens (or the voucher code)."""
CRASH = "crash"
ANSWER_LOST = "answer_lost"
"""The switch answered the till, and the network lost the answer on its way."""
ALL_CLASSES = frozenset((*DB_FAULTS, *PROVIDER_FAULTS, CRASH, ANSWER_LOST, "decline"))


@dataclass
class FaultPlan:
    """Which fault classes are on, and how often; `enabled` is off while the world is set up
    and while the queues drain at the end."""

    rng: random.Random
    classes: frozenset[str] = ALL_CLASSES
    statement_rate: float = 0.004
    commit_rate: float = 0.02
    provider_rate: float = 0.25
    crash_rate: float = 0.06
    enabled: bool = False
    injected: dict[str, int] = field(default_factory=dict)

    def _draw(self, name: str, rate: float) -> bool:
        if not self.enabled or name not in self.classes:
            return False
        if self.rng.random() >= rate:
            return False
        self.injected[name] = self.injected.get(name, 0) + 1
        return True

    def statement_fails(self) -> bool:
        return self._draw("statement", self.statement_rate)

    def commit_fault(self) -> str | None:
        """None, "commit_before" or "commit_lost", for one COMMIT."""
        if not self.enabled:
            return None
        choices = [c for c in ("commit_before", "commit_lost") if c in self.classes]
        if not choices or self.rng.random() >= self.commit_rate:
            return None
        chosen = self.rng.choice(choices)
        self.injected[chosen] = self.injected.get(chosen, 0) + 1
        return chosen

    def provider_behaviour(self) -> str:
        """ "approve", "decline", or one of PROVIDER_FAULTS, for one upstream request."""
        if self.enabled:
            faults = [f for f in PROVIDER_FAULTS if f in self.classes]
            if faults and self.rng.random() < self.provider_rate:
                chosen = self.rng.choice(faults)
                self.injected[chosen] = self.injected.get(chosen, 0) + 1
                return chosen
        if "decline" in self.classes and self.rng.random() < 0.08:
            return "decline"
        return "approve"

    def answer_lost(self) -> bool:
        return self._draw(ANSWER_LOST, 0.05)

    def crash_now(self) -> bool:
        return self._draw(CRASH, self.crash_rate)


class SimulatedDbError(Exception):
    """Stands for whatever the driver raises when a statement or a connection fails."""


def install(engine: Engine, plan: FaultPlan) -> None:
    """Hook the engine: statements may fail before they run, and the dialect's COMMIT may fail
    before or after it commits. Sits below `Database`, so it does not depend on how `Database`
    groups or retries operations."""
    dbapi: Any = engine.dialect.loaded_dbapi
    error = getattr(dbapi, "OperationalError", SimulatedDbError)

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK")):
            return
        if plan.statement_fails():
            raise error("simulated: statement failed")

    commit = engine.dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        fault = plan.commit_fault()
        if fault == "commit_before":
            # As when the connection drops before COMMIT reaches the server: nothing commits.
            dbapi_connection.rollback()
            raise error("simulated: COMMIT failed before committing")
        commit(dbapi_connection)
        if fault == "commit_lost":
            raise error("simulated: connection lost after COMMIT")

    engine.dialect.do_commit = do_commit  # type: ignore[method-assign]
