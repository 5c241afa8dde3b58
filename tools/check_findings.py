"""Run bandit over src/ and compare its findings with known-findings.toml.

Exit 0 when every finding is listed there with a reason and every entry still matches a finding;
otherwise print what is new or stale and exit 1. Bandit's own `# nosec` and baseline files are
not used: one file says what is accepted and why."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    known = tomllib.loads((ROOT / "known-findings.toml").read_text())["finding"]
    for number, entry in enumerate(known, 1):
        if not str(entry.get("reason", "")).strip():
            print(f"known-findings.toml: entry {number} ({entry.get('test')}) has no reason")
            return 1
    run = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", "src", "-f", "json"], cwd=ROOT, capture_output=True, text=True
    )
    if run.returncode not in (0, 1) or not run.stdout.strip():
        print(f"bandit failed ({run.returncode}):\n{run.stderr}")
        return 1
    report = json.loads(run.stdout)
    if report.get("errors"):
        print("bandit could not read:", *(f"{e['filename']}: {e['reason']}" for e in report["errors"]), sep="\n  ")
        return 1
    used: set[int] = set()
    new = []
    for finding in report["results"]:
        path = Path(finding["filename"]).as_posix()
        matched = [
            i
            for i, entry in enumerate(known)
            if entry["test"] == finding["test_id"] and any(fnmatch.fnmatch(path, p) for p in entry["paths"])
        ]
        used.update(matched)
        if not matched:
            new.append(f"{path}:{finding['line_number']} {finding['test_id']} {finding['issue_text']}")
    stale = [f"{entry['test']} {entry['paths']}" for i, entry in enumerate(known) if i not in used]
    for line in new:
        print("new finding (fix it, or list it with a reason in known-findings.toml):", line)
    for line in stale:
        print("known-findings.toml entry matches nothing any more (remove it):", line)
    if new or stale:
        return 1
    print(f"bandit: {len(report['results'])} findings, each listed in known-findings.toml with its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
