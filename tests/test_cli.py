"""The `xhuma` command as an operator meets it: reading commands never change the schema."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from tests.support import process_env, xhuma
from xhuma.storage.db import MIGRATIONS, schema_revision


def test_a_reading_command_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    env = process_env(XHUMA_DATABASE_URL=f"sqlite:///{path}")
    for args in (("tx", "list"), ("saf", "list"), ("eft", "files"), ("routing", "table")):
        result = xhuma(*args, env=env, check=False)
        assert result.returncode == 1, args
        assert "xhuma db upgrade" in result.stderr
    assert not path.exists()


def test_a_reading_command_leaves_an_old_schema_alone_and_says_what_to_run(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)

    refused = xhuma("tx", "list", env=env, check=False)

    assert refused.returncode == 1
    assert "schema revision 0001" in refused.stderr and "xhuma db upgrade" in refused.stderr
    assert schema_revision(engine)[0] == "0001"
    xhuma("db", "upgrade", env=env)
    current, newest = schema_revision(engine)
    assert current == newest
    engine.dispose()


def test_changing_commands_migrate_and_listings_print_json_lines(fresh_database_url: str) -> None:
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    xhuma("clients", "add", "--username", "till-9", "--password", "pw", "--client-id", "shop-9", env=env)
    xhuma("clients", "add", "--username", "ops", "--password", "pw", "--client-id", "ops", "--role", "admin", env=env)

    lines = xhuma("clients", "list", "--json", env=env).stdout.splitlines()

    listed = {row["username"]: row for row in map(json.loads, lines)}
    assert listed["till-9"] == {
        "username": "till-9",
        "client_id": "shop-9",
        "name": "till-9",
        "role": "retail",
        "enabled": True,
        "networks": [],
        "cert_subject": None,
    }
    assert listed["ops"]["role"] == "admin"
    table = xhuma("clients", "list", env=env).stdout
    assert "till-9" in table and "shop-9" in table and "username" in table
