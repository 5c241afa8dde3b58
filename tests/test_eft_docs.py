"""`docs/eft-file-format.md` is the layout's documentation in the project: its field tables are
made from `xhuma.eft.layout`, and this fails when the committed document drifts from them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import process_env
from xhuma.eft import layout
from xhuma.eft.docs import documented_kinds, markdown_tables, regenerate, table
from xhuma.eft.layout import Field, FieldType

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "eft-file-format.md"


def test_the_committed_tables_are_the_layouts() -> None:
    document = DOC.read_text()
    assert regenerate(document) == document, "run: python -m xhuma.eft.docs"
    assert documented_kinds(document) == set(layout.LAYOUTS), "every record kind has a table"


def test_a_position_edited_in_the_document_is_drift() -> None:
    document = DOC.read_text()
    edited = document.replace("| 46-52 | 7 | N | transmission number |", "| 46-53 | 8 | N | transmission number |")
    assert edited != document
    made = regenerate(edited)
    assert made != edited and made == document  # made again, it is the layout's (and keeps the rule)


def test_a_layout_change_is_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    document = DOC.read_text()
    fields = list(layout.LAYOUTS["999"])
    fields[2:] = [Field("record count", 5, 12, FieldType.NUMERIC), Field("filler", 13, 180, FieldType.FILLER)]
    monkeypatch.setitem(layout.LAYOUTS, "999", tuple(fields))
    made = regenerate(document)
    assert made != document
    assert "| 5-12 | 8 | N | record count | every record in the file, including the `000` and `999` records |" in made


def test_tables_keep_rules_and_name_constants() -> None:
    made = table(["001/10", "001/50"], {"amount": "cents, ≠0"})
    assert "| 52-62 | 11 | N | amount | cents, ≠0 |" in made
    assert "| 5-6 | 2 | C | record identifier | `10` or `50` |" in made
    assert "| 155-180 | 26 | F | filler 2 | |" in made
    with pytest.raises(ValueError, match="does not share the fields"):
        table(["001/10", "011"])
    assert markdown_tables().count("| Pos | Len | T | Field | Rule |") == len(layout.LAYOUTS)


def test_the_check_command_and_no_pointer_outside_the_project(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "xhuma.eft.docs", "--check"]
    assert subprocess.run(run, cwd=ROOT, env=process_env(), capture_output=True).returncode == 0
    stale = tmp_path / "stale.md"
    stale.write_text(DOC.read_text().replace("| 5-13 | 9 | N | record count |", "| 5-14 | 9 | N | record count |"))
    assert subprocess.run([*run, str(stale)], env=process_env(), capture_output=True).returncode == 1
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]:
        text = path.read_text()
        assert "shared/reference" not in text, path
        assert not re.search(r"\]\(\.\./", text), path
