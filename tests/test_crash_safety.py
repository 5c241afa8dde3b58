"""The crash-safety harness in its short form: a few real `kill -9`s of the switch under load."""

from __future__ import annotations

from tests.harness.crash import run


def test_kill_nine_loses_and_doubles_nothing(fresh_database_url: str) -> None:
    report = run(kills=3, seed=11, database_url=fresh_database_url, tills=6)
    print(report.summary())
    assert report.kills == 3 and report.approved > 0 and report.advices > 0
    assert report.problems == []
