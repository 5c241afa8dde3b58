"""Matching our records against theirs, as set operations in an in-memory DuckDB.

Pure: records in, one result per record out, on whichever thread calls it (a `recon run` does so
inside its database transaction, so what it decides is stored with it or not at all). No Python
loop per record: each rule is a join of the still-unassigned records of both sides under the
rule's criteria, from which the pairs that are each other's closest candidate are taken (repeated
until the rule finds no more). Rules run in order and a record taken by one is not offered to the
next. After every rule has taken its full matches, each rule in order pairs what is left on its
identity criteria alone: those pairs are `partially_matched`, with the fields that differ and by
how much; an automatic resolution may accept one. What remains is `unmatched` (or `expired`)."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from xhuma.finance.processes import TEXT_FIELDS, AutoResolution, Criterion, Process, Rule

SIDES = ("ours", "theirs")


@dataclass(frozen=True)
class Record:
    id: str
    reference: str | None
    amount: int
    time_us: int
    currency: str | None = None
    type: str | None = None
    meter: str | None = None
    voucher: str | None = None
    expires: bool = False
    """Whether it becomes `expired` if this run leaves it unmatched."""


@dataclass(frozen=True)
class Result:
    side: str
    id: str
    status: str
    """matched | partially_matched | unmatched | expired"""
    rule: str | None = None
    group: str | None = None
    counterparts: tuple[str, ...] = ()
    differences: dict[str, int | str] = field(default_factory=dict)
    """For a partial match: field -> theirs minus ours (cents, seconds) or "ours / theirs"."""
    resolution: str | None = None

    @property
    def missing(self) -> str | None:
        """For an unmatched or expired record: the side that has no record of it."""
        if self.status in ("unmatched", "expired"):
            return "theirs" if self.side == "ours" else "ours"
        return None


COLUMNS = ("id", "reference", "amount", "time_us", "currency", "type", "meter", "voucher", "expires", "day")
TYPES = ("VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BOOLEAN", "VARCHAR")
"""A side's table: a Record's fields and, for the store, the record's own day (or NULL)."""
CHUNK = 20_000
"""Rows of results fetched from DuckDB at a time."""


def match(process: Process, ours: Sequence[Record], theirs: Sequence[Record]) -> list[Result]:
    with session() as con:
        for side, records in zip(SIDES, (ours, theirs), strict=True):
            add(con, side, ((*(getattr(r, c) for c in COLUMNS[:-1]), None) for r in records))
        decide(con, process)
        return _results(con)


MEMORY_LIMIT = "512MB"
"""What DuckDB may hold in memory; beyond it, it spills to a temporary folder (a run of a
million records a side would otherwise hold several GB)."""


@contextmanager
def session() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with both sides' (empty) tables, spilling to its own temporary folder."""
    with tempfile.TemporaryDirectory(prefix="xhuma-match-") as folder:
        con = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": folder})
        try:
            for side in SIDES:
                columns = ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, TYPES, strict=True))
                con.execute(f"CREATE TABLE {side} ({columns})")
            con.execute("CREATE TABLE members (grp VARCHAR, side VARCHAR, id VARCHAR)")
            con.execute(
                "CREATE TABLE groups (grp VARCHAR, rule VARCHAR, status VARCHAR, diffs VARCHAR, resolution VARCHAR)"
            )
            yield con
        finally:
            con.close()


def add(con: duckdb.DuckDBPyConnection, side: str, rows: Iterable[Sequence[object]]) -> int:
    """A side's records, tuples in COLUMNS order, streamed through a temporary CSV file that
    DuckDB reads in one go (several times faster than Python lists as parameters, and no Python
    object per record is held); an empty text is no value (NULL), as a file's empty cell is.
    Returns how many were added."""
    columns = ", ".join(f"'{c}': '{t}'" for c, t in zip(COLUMNS, TYPES, strict=True))
    before = _count(con, side)
    with tempfile.TemporaryDirectory(prefix="xhuma-match-") as folder:
        path = Path(folder) / f"{side}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(rows)
        if path.stat().st_size:
            con.execute(
                f"""INSERT INTO {side} SELECT * FROM read_csv(?, header = false, delim = ',', quote = '"',
                    escape = '"', columns = {{{columns}}})""",
                [str(path)],
            )
    return _count(con, side) - before


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    found = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else 0


def decide(con: duckdb.DuckDBPyConnection, process: Process) -> None:
    """Run the process's rules over what `add` put in: every rule's full matches, then each
    rule's partial matches on its identity criteria, into `members` and `groups`."""
    for index, rule in enumerate(process.rules):
        _take(con, rule, process.rule_name(index), rule.criteria, None)
    for index, rule in enumerate(process.rules):
        rest = [c for c in rule.criteria if not c.is_key]
        if rule.keys and rest:
            _take(con, rule, process.rule_name(index), rule.keys, (rest, process.auto_resolutions))


DECIDED = """
    WITH counterparts AS (SELECT grp, side, list(id ORDER BY id) AS ids FROM members GROUP BY grp, side),
    records AS (SELECT 'ours' AS side, * FROM ours UNION ALL SELECT 'theirs' AS side, * FROM theirs)
    SELECT x.side, x.id,
           coalesce(g.status, CASE WHEN x.expires THEN 'expired' ELSE 'unmatched' END) AS status,
           g.rule, g.grp, to_json(c.ids) AS counterparts,
           CASE WHEN g.diffs <> '{}' THEN g.diffs END AS differences, g.resolution,
           x.reference, x.amount, x.time_us, x.day
    FROM records x
    LEFT JOIN members m ON m.side = x.side AND m.id = x.id
    LEFT JOIN groups g ON g.grp = m.grp
    LEFT JOIN counterparts c ON c.grp = m.grp AND c.side <> x.side"""
"""Every record's result, one row each (after `decide`): counterparts and differences as JSON."""


def decided_chunks(con: duckdb.DuckDBPyConnection, columns: str, parameters: Sequence[object]) -> Iterator[list[Any]]:
    """`SELECT columns FROM DECIDED` a CHUNK of rows at a time: the results are kept as a DuckDB
    table (which may spill to disk) and read back in slices of its row ids, so that neither a
    whole result set nor a Python object per record of it is ever held at once."""
    con.execute(f"CREATE OR REPLACE TABLE decided AS {DECIDED}")
    total = _count(con, "decided")
    for low in range(0, total, CHUNK):
        query = f"SELECT {columns} FROM decided WHERE rowid >= ? AND rowid < ?"
        yield con.execute(query, [*parameters, low, low + CHUNK]).fetchall()


Partial = tuple[list[Criterion], list[AutoResolution]]


def _take(
    con: duckdb.DuckDBPyConnection, rule: Rule, name: str, criteria: list[Criterion], partial: Partial | None
) -> None:
    """Assign, until none is left, the pairs of free records (or groups) that the criteria join
    and that are each other's closest candidate (by amount, then time, then id)."""
    fields = rule.group_fields
    left = _side("ours", fields if rule.strategy == "many_to_one" else None)
    right = _side("theirs", fields if rule.strategy == "one_to_many" else None)
    on = " AND ".join(_condition(c) for c in criteria)  # NULL rejects a pair as false does; plain
    # equalities let DuckDB hash-join on them (wrapped in coalesce they forced a nested loop)
    differences = [] if partial is None else partial[0]
    extra = "".join(
        f", CASE WHEN coalesce({_condition(c)}, false) THEN NULL ELSE CAST({_difference(c)} AS VARCHAR) END AS d{n}"
        for n, c in enumerate(differences)
    )
    candidates = f"""
        SELECT o.rid AS orid, t.rid AS trid, o.ids AS oids, t.ids AS tids,
               abs(o.amount - t.amount) AS da, abs(o.tmin - t.tmin) AS dt {extra}
        FROM ({left}) o JOIN ({right}) t ON {on}"""
    chosen = f"""
        CREATE OR REPLACE TEMP TABLE chosen AS
        SELECT orid || '|' || trid AS grp, * FROM (
            SELECT *, row_number() OVER (PARTITION BY orid ORDER BY da, dt, trid) AS by_ours,
                      row_number() OVER (PARTITION BY trid ORDER BY da, dt, orid) AS by_theirs
            FROM ({candidates}))
        WHERE by_ours = 1 AND by_theirs = 1"""
    while True:
        con.execute(chosen)
        found = con.execute("SELECT count(*) FROM chosen").fetchone()
        if not found or not found[0]:
            return
        if partial is None:
            con.execute("INSERT INTO groups SELECT grp, ?, 'matched', NULL, NULL FROM chosen", [name])
        else:
            names = [c.field for c in differences]
            rows = con.execute(f"SELECT grp {''.join(f', d{n}' for n in range(len(names)))} FROM chosen").fetchall()
            con.executemany(
                "INSERT INTO groups VALUES (?, ?, ?, ?, ?)", [_partial(row, names, name, partial[1]) for row in rows]
            )
        con.execute("INSERT INTO members SELECT grp, 'ours', unnest(oids) FROM chosen")
        con.execute("INSERT INTO members SELECT grp, 'theirs', unnest(tids) FROM chosen")


def _partial(row: tuple[object, ...], names: Sequence[str], rule: str, autos: list[AutoResolution]) -> list[object]:
    differences: dict[str, int | str] = {}
    for name, value in zip(names, row[1:], strict=True):
        if value is not None and name not in differences:
            differences[name] = int(str(value)) if name in ("amount", "time") else str(value)
    status, resolution = "partially_matched", None
    amount = differences.get("amount")
    if set(differences) == {"amount"} and isinstance(amount, int):
        auto = next((a for a in autos if abs(amount) <= a.within_cents), None)
        if auto is not None:
            status, resolution = "matched", f"auto: in favour of {auto.in_favour_of}"
    return [row[0], rule, status, json.dumps(differences, sort_keys=True), resolution]


def _side(side: str, group_by: list[str] | None) -> str:
    free = f"SELECT * FROM {side} x WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.side = '{side}' AND m.id = x.id)"
    if group_by is None:
        texts = ", ".join(TEXT_FIELDS)
        return f"SELECT id AS rid, [id] AS ids, {texts}, amount, time_us AS tmin, time_us AS tmax FROM ({free})"
    texts = ", ".join(
        f if f in group_by else f"CASE WHEN count(DISTINCT {f}) = 1 THEN min({f}) END AS {f}" for f in TEXT_FIELDS
    )
    return f"""SELECT min(id) AS rid, list(id ORDER BY id) AS ids, {texts}, sum(amount)::BIGINT AS amount,
                      min(time_us) AS tmin, max(time_us) AS tmax
               FROM ({free}) GROUP BY {", ".join(group_by)}"""


def _condition(c: Criterion) -> str:
    """The criterion as SQL over `o` (ours) and `t` (theirs); a group's time is its span."""
    if c.field in TEXT_FIELDS:
        if c.operator == "contains":
            return f"(o.{c.field} <> '' AND strpos(t.{c.field}, o.{c.field}) > 0)"
        return f"(o.{c.field} = t.{c.field})"
    if c.field == "amount":
        gap = "abs(o.amount - t.amount)" if c.operator == "equals" else "abs(t.amount - o.amount)"
        bound = _amount_bound(c, gap)
        if c.operator == "greater_than":
            return f"(t.amount > o.amount{bound})"
        if c.operator == "less_than":
            return f"(t.amount < o.amount{bound})"
        return f"(o.amount = t.amount{bound})" if c.drift is None else f"({bound.removeprefix(' AND ')})"
    seconds = None if c.drift is None else int(c.drift) * 1_000_000
    if c.operator == "before":
        return "(t.tmax <= o.tmin" + ("" if seconds is None else f" AND o.tmax - t.tmin <= {seconds}") + ")"
    if c.operator == "after":
        return "(t.tmin >= o.tmax" + ("" if seconds is None else f" AND t.tmax - o.tmin <= {seconds}") + ")"
    return f"(greatest(abs(o.tmin - t.tmax), abs(o.tmax - t.tmin)) <= {seconds or 0})"


def _amount_bound(c: Criterion, gap: str) -> str:
    if c.drift is None:
        return ""
    fraction = c.fraction()
    if fraction is None:
        return f" AND {gap} <= {int(c.drift)}"
    numerator, denominator = fraction
    return f" AND {gap} * {denominator} <= {numerator} * abs(o.amount)"


def _difference(c: Criterion) -> str:
    if c.field == "amount":
        return "t.amount - o.amount"
    if c.field == "time":
        return "(t.tmin - o.tmin) // 1000000"
    return f"coalesce(o.{c.field}, '') || ' / ' || coalesce(t.{c.field}, '')"


def _results(con: duckdb.DuckDBPyConnection) -> list[Result]:
    rows = con.execute(
        f"SELECT side, id, status, rule, grp, counterparts, differences, resolution FROM ({DECIDED}) ORDER BY side, id"
    ).fetchall()
    return [
        Result(
            side,
            record_id,
            status,
            rule,
            grp,
            tuple(json.loads(ids)) if ids else (),
            json.loads(diffs) if diffs else {},
            resolution,
        )
        for side, record_id, status, rule, grp, ids, diffs, resolution in rows
    ]
