"""Taking a counterparty's file in: the one path `xhuma recon load`, the inboxes (`xhuma recon
intake`, and `xhuma serve` in the background) and `POST /admin/finance/files` share.

Runs on whichever thread calls it, never the event loop: reading and checking the file is pure,
and each database step is an operation handed to `run`, which is `Database.run_sync` in a command
and `on_database_threads` in the server (the operation then runs on a database thread, as every
other does, while this thread waits). A file is offered first (a duplicate by content or name is
refused and nothing is stored), then checked whole: one bad line and only the file's ERROR row
is kept, with every bad line; else all its records are stored with it, LOADED, in one
transaction."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from xhuma.finance import store
from xhuma.finance.files import FileRefused, LineProblem, read_file
from xhuma.finance.processes import Process
from xhuma.storage.db import Database, Operation

T = TypeVar("T")
Runner = Callable[[Operation[Any]], Any]
REFUSED = "REFUSED"
"""A duplicate: not a status of any stored file (nothing was stored)."""


@dataclass(frozen=True)
class Taken:
    file_id: str
    name: str
    status: str
    """LOADED, ERROR (checked and found bad) or REFUSED (a duplicate)."""
    records: int = 0
    amount: int = 0
    problems: list[LineProblem] = field(default_factory=list)
    duplicate_of: dict[str, Any] | None = None

    def why(self) -> str:
        """What an operator reads about a file that was not loaded."""
        if self.duplicate_of is not None:
            first = self.duplicate_of
            return f"refused: {first['reason']} as file {first['name']} ({first['id']}, {first['status']})"
        return f"ERROR: {len(self.problems)} bad line(s); nothing was loaded (file {self.file_id})"


def take(run: Runner, process: Process, name: str, content: bytes) -> Taken:
    file_id = str(uuid.uuid4())
    offer: store.Offer = run(store.offer_file(file_id, process.name, name, store.content_hash(content)))
    if offer.duplicate_of is not None:
        return Taken(file_id, name, REFUSED, duplicate_of=offer.duplicate_of)
    run(store.start_loading(file_id))
    try:
        records = read_file(process, content, name)
    except FileRefused as exc:
        run(store.refuse_file(file_id, exc.problems))
        return Taken(file_id, name, store.ERROR, problems=exc.problems)
    run(store.finish_loading(file_id, process, records))
    return Taken(file_id, name, store.LOADED, len(records), sum(r.amount for r in records))


def inbox_files(process: Process) -> list[Path]:
    """The files waiting in the process's inbox that follow its name pattern, oldest first
    (anything else, e.g. a file still being written under another name, is left there)."""
    if process.inbox is None:
        return []
    folder = Path(process.inbox)
    pattern = process.file.name_regex()
    found = [p for p in folder.iterdir() if p.is_file() and (pattern is None or pattern.fullmatch(p.name))]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def take_inbox(run: Runner, process: Process) -> list[Taken]:
    """Take every waiting file, moving each to `processed/` (LOADED) or `refused/`, a refused
    one with `NAME.errors.txt` beside it: one JSON object per bad line, or why it was refused."""
    assert process.inbox is not None
    Path(process.inbox).mkdir(parents=True, exist_ok=True)
    done = []
    for path in inbox_files(process):
        taken = take(run, process, path.name, path.read_bytes())
        folder = path.parent / ("processed" if taken.status == store.LOADED else "refused")
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        if target.exists():
            target = folder / f"{taken.file_id}-{path.name}"
        path.replace(target)
        if taken.status != store.LOADED:
            lines = [json.dumps({"line": p.line, "raw": p.raw, "reason": p.reason}) for p in taken.problems]
            target.with_name(target.name + ".errors.txt").write_text("\n".join([taken.why(), *lines]) + "\n")
        done.append(taken)
    return done


def on_database_threads(db: Database, loop: asyncio.AbstractEventLoop) -> Runner:
    """For a worker thread of the server: run each operation on the database threads and wait."""

    def run(op: Operation[T]) -> T:
        return asyncio.run_coroutine_threadsafe(db.run(op), loop).result()

    return run
