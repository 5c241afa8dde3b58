"""The audit log of operator actions: its hash chain finds any edit, insertion or deletion (pure),
and the CLI and the admin API record who changed what, from where, before and after."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from tests.conftest import Switch
from tests.support import process_env, xhuma
from xhuma.security.audit import GENESIS, entry_hash, first_break

texts = st.text(min_size=0, max_size=12)
entry_fields = st.fixed_dictionaries(
    {
        "at_us": st.integers(0, 2**62),
        "actor": texts,
        "source": texts,
        "action": texts,
        "target": texts,
        "before": st.none() | texts,
        "after": st.none() | texts,
    }
)


def chain(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq, content in enumerate(contents, start=1):
        row = {"seq": seq, "prev_hash": prev, **content}
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    return rows


@given(st.lists(entry_fields, min_size=1, max_size=8), st.data())
def test_the_chain_names_the_first_entry_changed_after_it_was_written(
    contents: list[dict[str, Any]], data: st.DataObject
) -> None:
    rows = chain(contents)
    assert first_break(rows) is None
    victim = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from(["at_us", "actor", "source", "action", "target", "before", "after"]))
    edited = dict(rows[victim])
    edited[field] = (edited[field] + 1) if field == "at_us" else (edited[field] or "") + "x"
    rows[victim] = edited
    broken = first_break(rows)
    assert broken is not None and broken[0] == victim + 1


@given(st.lists(entry_fields, min_size=3, max_size=8), st.data())
def test_the_chain_names_where_an_entry_was_deleted_or_rehashed(
    contents: list[dict[str, Any]], data: st.DataObject
) -> None:
    rows = chain(contents)
    victim = data.draw(st.integers(1, len(rows) - 2))
    without = rows[:victim] + rows[victim + 1 :]
    assert first_break(without) == (
        victim + 2,
        f"expected entry {victim + 1} here: an entry is missing or was inserted",
    )
    forged = dict(rows[victim], actor="someone else")
    forged["hash"] = entry_hash(forged)  # rehashed in place: the next entry no longer chains to it
    broken = first_break(rows[:victim] + [forged] + rows[victim + 1 :])
    assert broken is not None and broken[0] == victim + 2


def test_cli_actions_are_chained_and_a_hand_edit_is_named(fresh_database_url: str) -> None:
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    xhuma("clients", "add", "--username", "till-a", "--password", "pw", "--client-id", "shop-a", env=env)
    xhuma("clients", "add", "--username", "till-a", "--password", "pw2", "--client-id", "shop-b", env=env)
    xhuma("routing", "prefer", "Town A", "--providers", "sim", "--actor", "alice", env=env)

    entries = [json.loads(line) for line in xhuma("audit", "list", "--json", env=env).stdout.splitlines()]

    assert [e["action"] for e in entries] == ["routing.set_preferences", "clients.add", "clients.add"]
    rebound, created = entries[1], entries[2]
    assert created["before"] is None and json.loads(created["after"])["client_id"] == "shop-a"
    assert json.loads(rebound["before"])["client_id"] == "shop-a"
    assert json.loads(rebound["after"])["client_id"] == "shop-b"
    assert "pw" not in rebound["after"] and "argon2" not in rebound["after"]
    assert entries[0]["actor"] == "alice" and entries[0]["source"].startswith("cli@")
    assert json.loads(entries[0]["after"]) == [
        {"municipality": "Town A", "provider": "sim", "rank": 1, "excluded": False}
    ]
    assert "3 entries" in xhuma("audit", "verify", env=env).stdout

    engine = create_engine(fresh_database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET after = :a WHERE seq = 2"), {"a": '{"client_id":"shop-z"}'})
    engine.dispose()
    refused = xhuma("audit", "verify", env=env, check=False)
    assert refused.returncode == 1
    assert "broken at entry 2 of 3" in refused.stderr


def test_admin_api_changes_carry_the_operator_and_address(switch: Switch) -> None:
    admin = ("audit-ops", "audit-ops-pw")
    switch.cli(
        "clients", "add", "--username", admin[0], "--password", admin[1], "--client-id", "ops", "--role", "admin"
    )
    with httpx.Client(base_url=switch.url + "/admin", auth=admin, timeout=10) as http:
        put = http.put("/routing/preferences/Audit Town", json={"providers": ["sim"]})
        assert put.status_code == 200, put.text
        refused = http.post("/saf/987654321/retry")
        assert refused.status_code == 409
        logged = http.get("/audit", params={"action": "routing.set_preferences"}).json()
        verified = http.get("/audit/verify").json()

    mine = [e for e in logged if e["target"] == "Audit Town"]
    assert len(mine) == 1
    assert mine[0]["actor"] == admin[0] and mine[0]["source"] == "127.0.0.1"
    assert json.loads(mine[0]["after"])[0]["provider"] == "sim"
    assert verified["holds"] is True and verified["entries"] >= 2
    retries = [e for e in http_get_all(switch, admin) if e["action"] == "saf.retry"]
    assert retries == []  # a refused retry changed nothing, so nothing is recorded


def http_get_all(switch: Switch, admin: tuple[str, str]) -> list[dict[str, Any]]:
    return list(httpx.get(switch.url + "/admin/audit", params={"limit": 10_000}, auth=admin, timeout=10).json())
