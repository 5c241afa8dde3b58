"""The field tables of `docs/eft-file-format.md`, generated from the declarative layout.

In the document, each table sits between `<!-- layout KIND [KIND ...] -->` and
`<!-- /layout -->`. Positions, lengths, types, field names and constants come from
`layout.LAYOUTS`; the Rule column is prose, kept by field name when a table is made again.
Several kinds in one marker share one table (their fields must line up).

    python -m xhuma.eft.docs [PATH]          # rewrite PATH's tables (default docs/eft-file-format.md)
    python -m xhuma.eft.docs --check [PATH]  # exit 1 when PATH's tables differ from the layout
    python -m xhuma.eft.docs --tables        # every record kind's table, to stdout
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from xhuma.eft.layout import LAYOUTS, Field, FieldType

DOC = Path("docs") / "eft-file-format.md"
BLOCK = re.compile(r"(?P<open><!-- layout (?P<kinds>[^>]+?) -->\n)(?P<table>.*?)(?P<close><!-- /layout -->)", re.S)
HEADER = "| Pos | Len | T | Field | Rule |\n|---|---|---|---|---|\n"


def _shape(field: Field) -> tuple[str, int, int, FieldType]:
    return field.name, field.start, field.end, field.type


def table(kinds: Sequence[str], rules: Mapping[str, str] | None = None) -> str:
    """The Markdown table of one or more record kinds with the same fields, with each field's
    rule from `rules` (a constant's rule is its value unless the rule names it)."""
    layouts = [LAYOUTS[kind] for kind in kinds]
    for kind, fields in zip(kinds[1:], layouts[1:], strict=True):
        if [_shape(f) for f in fields] != [_shape(f) for f in layouts[0]]:
            raise ValueError(f"{kind} does not share the fields of {kinds[0]}")
    rows = [HEADER]
    for index, field in enumerate(layouts[0]):
        rule = (rules or {}).get(field.name, "")
        if field.type is FieldType.CONSTANT:
            values = list(dict.fromkeys(str(fields[index].constant) for fields in layouts))
            if not all(f"`{value}`" in rule for value in values):
                rule = " or ".join(f"`{value}`" for value in values)
        position = str(field.start) if field.width == 1 else f"{field.start}-{field.end}"
        cells = [position, str(field.width), field.type.value, field.name, rule]
        rows.append("|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|\n")
    return "".join(rows)


def _rules(text: str) -> dict[str, str]:
    """Field name to rule, from a table as the document has it."""
    rules = {}
    for line in text.splitlines()[2:]:
        cells = line.strip().strip("|").split("|")
        if len(cells) >= 5:
            rules[cells[3].strip()] = "|".join(cells[4:]).strip()
    return rules


def regenerate(document: str) -> str:
    """The document with every marked table made again from the layout."""

    def again(match: re.Match[str]) -> str:
        kinds = match["kinds"].split()
        return match["open"] + table(kinds, _rules(match["table"])) + match["close"]

    return BLOCK.sub(again, document)


def documented_kinds(document: str) -> set[str]:
    return {kind for match in BLOCK.finditer(document) for kind in match["kinds"].split()}


def markdown_tables() -> str:
    """Every record kind's table, without rules."""
    return "\n".join(f"### `{kind}`\n\n{table([kind])}" for kind in LAYOUTS)


def main(argv: Sequence[str]) -> int:
    if "--tables" in argv:
        sys.stdout.write(markdown_tables())
        return 0
    check = "--check" in argv
    paths = [a for a in argv if not a.startswith("--")]
    path = Path(paths[0]) if paths else DOC
    document = path.read_text()
    made = regenerate(document)
    missing = sorted(set(LAYOUTS) - documented_kinds(document))
    if missing:
        print(f"{path}: no table for {', '.join(missing)}", file=sys.stderr)
    if check:
        if made != document:
            print(f"{path}: tables differ from the layout; run python -m xhuma.eft.docs {path}", file=sys.stderr)
        return 1 if made != document or missing else 0
    if made != document:
        path.write_text(made)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
