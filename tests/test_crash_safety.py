"""The crash-safety harness in its short form: a few real `kill -9`s of the switch under load
(electricity and vouchers), and on PostgreSQL a few terminations of its database connections."""

from __future__ import annotations

from tests.harness.crash import run


def test_kill_nine_loses_and_doubles_nothing(fresh_database_url: str) -> None:
    connection_kills = 4 if fresh_database_url.startswith("postgresql") else 0
    report = run(kills=3, seed=11, database_url=fresh_database_url, tills=6, connection_kills=connection_kills)
    print(report.summary())
    assert report.kills == 3 and report.connection_kills == connection_kills
    assert report.approved > 0 and report.advices > 0 and report.vouchers_issued > 0
    assert report.problems == []
