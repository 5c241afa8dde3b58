"""The checker: after the queues drained, compare what the provider did (its ledger), what the
journal says, and what the tills were told. Every rule is a money-safety property; a problem
names the retail id so the trace can be followed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, select

from tests.sim.providers import Ledger
from tests.sim.world import TillRecord
from xhuma.storage.tables import reconciliation_exceptions, saf_entries, transactions

POSSIBLY_SOLD = frozenset({"approved", "confirmed"})


def check(
    engine: Engine,
    ledger: Ledger,
    till: list[TillRecord],
    *,
    requests: tuple[str, ...] = ("purchase", "retry"),
    advice_kinds: tuple[str, ...] = ("confirmation", "reversal"),
    request_kind: str = "purchase",
) -> list[str]:
    """PPU by default; `check_vouchers` runs the same rules on provisions."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(transactions))]
        open_exceptions = {
            r.tx_id
            for r in conn.execute(
                select(reconciliation_exceptions.c.tx_id).where(reconciliation_exceptions.c.state == "open")
            )
        }
        entries = [dict(r._mapping) for r in conn.execute(select(saf_entries))]
    open_exceptions |= {e["tx_id"] for e in entries if e["state"] == "exception"}
    by_id = {r["id"]: r for r in rows}
    problems: list[str] = []

    def excepted(tx: dict[str, Any]) -> bool:
        return tx["id"] in open_exceptions or any(
            r["id"] in open_exceptions for r in rows if r["parent_id"] == tx["id"]
        )

    sales_by_retail: dict[str, list[str]] = defaultdict(list)
    for upstream_id in ledger.sales:
        tx = by_id.get(upstream_id)
        if tx is None and request_kind != "purchase":
            problems.append(f"provider issued {upstream_id}, which the journal does not know")
            continue
        if tx is None:
            problems.append(f"provider sold {upstream_id}, which the journal does not know")
            continue
        sales_by_retail[tx["retail_id"]].append(upstream_id)
        reversed_at_provider = any(k == "reversals" and r == upstream_id for k, r in ledger.advices.values())
        state = tx["state"]
        if state in POSSIBLY_SOLD or excepted(tx):
            continue
        if state == "reversed" and reversed_at_provider:
            continue
        problems.append(
            f"provider sold {tx['retail_id']} (ours {upstream_id[:8]}) but the journal says {state}"
            + (" and the reversal never reached the provider" if state == "reversed" else "")
            + ", with no open exception"
        )
    for retail_id, sold in sales_by_retail.items():
        if len(sold) > 1:
            problems.append(f"sold {len(sold)} times for one retail request {retail_id}: {sold}")

    last: dict[str, TillRecord] = {}
    for record in till:
        if record.kind in requests:
            last[record.retail_id] = record
    for record in till:
        if record.kind not in requests or record.status in (None, 500, 504):
            continue
        if record.status >= 300 and last[record.retail_id] is not record:
            continue  # the till asked again (its retry is what it acts on), so judge the last answer
        sold = sales_by_retail.get(record.retail_id, [])
        if record.status < 300:
            tokens = _handed_over(record.body or {})
            if not any(ledger.sales[s] == tokens for s in sold):
                problems.append(
                    f"till got {record.status} for {record.retail_id} with tokens {tokens}; provider sold "
                    f"{[ledger.sales[s] for s in sold]}"
                )
            continue
        error = (record.body or {}).get("errorType")
        for upstream_id in sold:
            if not excepted(by_id[upstream_id]):
                problems.append(
                    f"till got {record.status} {error} for {record.retail_id} ({record.kind}) but the provider "
                    f"sold it, and there is no open exception"
                )

    advices = {(r["retail_id"], r["kind"]): r for r in rows if r["kind"] in advice_kinds}
    for record in till:
        if record.kind not in advice_kinds or record.status != 202:
            continue
        advice = advices.get((record.retail_id, record.kind))
        if advice is None:
            problems.append(f"{record.kind} {record.retail_id} was acknowledged (202) but is not in the journal")
            continue
        if advice["id"] in ledger.advices or advice["id"] in open_exceptions:
            continue
        parent = by_id.get(advice["parent_id"] or "")
        if parent is not None and (parent["id"] in open_exceptions):
            continue
        if parent is not None and parent["id"] not in ledger.sales:
            continue  # the provider never sold it: there is nothing to advise
        problems.append(
            f"{record.kind} {record.retail_id} of {record.request_id} was acknowledged (202) but never reached "
            "the provider, and there is no open exception"
        )

    for entry in entries:
        if entry["state"] == "pending":
            problems.append(f"queue did not drain: {entry['operation']} for {entry['tx_id'][:8]} still pending")
    for tx in rows:
        if tx["state"] == "sent_upstream" and tx["kind"] == request_kind:
            problems.append(f"{request_kind} {tx['retail_id']} left sent_upstream after recovery")
    return problems


def check_vouchers(engine: Engine, ledger: Ledger, till: list[TillRecord]) -> list[str]:
    """The same rules for voucher provisions (the queue rule is already checked by `check`)."""
    problems = check(
        engine,
        ledger,
        till,
        requests=("provision", "provision_retry"),
        advice_kinds=("voucher_confirmation", "voucher_reversal"),
        request_kind="voucher_provision",
    )
    return [p for p in problems if not p.startswith("queue did not drain")]


def _handed_over(body: dict[str, Any]) -> list[Any]:
    """What the till's answer hands the customer: PPU tokens, or the SUV voucher's code."""
    if "voucher" in body:
        return [body["voucher"].get("code")]
    return [t.get("token") for t in body.get("tokens") or []]
