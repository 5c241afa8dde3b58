"""Reconciliation files under /admin/finance/files: a counterparty's file taken in as the
request body (as `xhuma recon load` takes it: checked whole, duplicates refused), and the list of
a process's files. The file is read and checked on a worker thread, its database steps run on
the database threads (`finance.intake.on_database_threads`); the event loop only waits."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.replies import BodyTooLarge, json_reply, read_body
from xhuma.finance import store
from xhuma.finance.intake import REFUSED, Taken, on_database_threads, take
from xhuma.node import Node
from xhuma.security.audit import Actor, record
from xhuma.storage.db import Operation
from xhuma.validation import MAX_ERRORS

MAX_FILE_BYTES = 64 * 1024 * 1024
"""The largest file taken over HTTP (a bigger one goes through the inbox or `recon load`)."""
MAX_NAME = 255
"""The longest file name kept (the finance_files column)."""


def _problem(code: int, message: str, field: str | None = None, **more: Any) -> Response:
    return json_reply({"error": message, **({"field": field} if field else {}), **more}, code)


def _audited(actor: Actor, process: str, taken: Taken) -> Operation[None]:
    outcome: dict[str, Any] = {
        "file": taken.file_id,
        "status": taken.status,
        "records": taken.records,
        "amount": taken.amount,
    }
    if taken.problems:
        outcome["bad_lines"] = len(taken.problems)

    def op(conn: Connection) -> None:
        record(conn, actor, "finance.files.take", f"{process}/{taken.name}", None, outcome)

    return op


def finance_file_routes(node: Node) -> list[Route]:
    async def upload(request: Request) -> Response:
        process = node.settings.process(request.query_params.get("process", ""))
        if process is None:
            known = ", ".join(p.name for p in node.settings.processes) or "none configured"
            return _problem(404, f"no reconciliation process of that name ({known})", "process")
        name = request.query_params.get("name", "")
        if not name or len(name) > MAX_NAME or Path(name).name != name or name in (".", ".."):
            return _problem(400, f"the file's name, 1 to {MAX_NAME} characters without a folder", "name")
        try:
            body = await read_body(request, MAX_FILE_BYTES)
        except BodyTooLarge:
            return _problem(413, f"larger than {MAX_FILE_BYTES} bytes; use the inbox", "body")
        run = on_database_threads(node.db, asyncio.get_running_loop())
        taken = await asyncio.to_thread(take, run, process, name, body)
        await node.db.run(_audited(request.state.operator, process.name, taken))
        shown = {"id": taken.file_id, "name": name, "process": process.name, "status": taken.status}
        if taken.status == store.LOADED:
            return json_reply({**shown, "records": taken.records, "amount": taken.amount}, 201)
        if taken.status == REFUSED:
            return _problem(409, taken.why(), "name", duplicate_of=taken.duplicate_of, status=REFUSED)
        errors = [asdict(p) for p in taken.problems[:MAX_ERRORS]]
        return _problem(
            422,
            f"{len(taken.problems)} bad line(s); nothing was loaded",
            "body",
            **shown,
            errors=errors,
            more=len(taken.problems) - len(errors),
        )

    async def listed(request: Request) -> Response:
        process = node.settings.process(request.query_params.get("process", ""))
        if process is None:
            return _problem(404, "no reconciliation process of that name", "process")
        return json_reply(await node.db.run(store.files(process.name)))

    return [
        Route("/admin/finance/files", upload, methods=["POST"]),
        Route("/admin/finance/files", listed, methods=["GET"]),
    ]
