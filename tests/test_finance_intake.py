"""Counterparty files taken in by the three doors, through real processes on both backends: the
inbox with `xhuma recon intake` (each file once, moved to processed/ or refused/ with its bad
lines beside it), the inbox polled by `xhuma serve`, and `POST /admin/finance/files`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Server, free_port, process_env, xhuma
from tests.test_finance_config import PROCESS, PROVIDER

NAME = "SIM_XHUMA_EXTRACT_PPU_SWITCH_20260101_{}.csv"
HEADER = "reference,amount_cents,time,type,meter\n"
GOOD = HEADER + "a,100,2026-01-01T10:00:00Z,purchase,\nb,150,2026-01-01T10:00:00Z,purchase,\n"
BAD = HEADER + "a,100,2026-01-01T10:00:00Z,purchase,\nb,1.5,2026-01-01T10:00:00Z,purchase,\nc,5\n"
ADMIN = ("ops", "ops-pw")


def config_with_inbox(folder: Path, inbox: Path, seconds: float = 60.0) -> Path:
    config = folder / "xhuma.toml"
    process = PROCESS.replace("exclude = [", f'inbox = "{inbox}"\nexclude = [')
    config.write_text(f"[finance]\nintake_seconds = {seconds}\n\n" + PROVIDER + process)
    return config


def files(env: dict[str, str]) -> list[dict[str, object]]:
    out = xhuma("recon", "files", "--process", "sim-ppu", "--json", env=env).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_recon_intake_takes_each_inbox_file_once(fresh_database_url: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config_with_inbox(tmp_path, inbox)))
    (inbox / NAME.format(1)).write_text(GOOD)
    (inbox / NAME.format(2)).write_text(BAD)
    (inbox / "notes.txt").write_text("not a file of the process's pattern")
    first = xhuma("recon", "intake", env=env, check=False)
    assert first.returncode == 1, first.stderr
    assert f"{NAME.format(1)}: LOADED" in first.stdout and "2 file(s) taken, 1 refused" in first.stdout
    assert f"{NAME.format(2)}:3: amount: '1.5' is not a whole number of cents" in first.stderr
    assert sorted(p.name for p in inbox.iterdir()) == ["notes.txt", "processed", "refused"]
    assert [p.name for p in (inbox / "processed").iterdir()] == [NAME.format(1)]
    errors = (inbox / "refused" / (NAME.format(2) + ".errors.txt")).read_text().splitlines()
    assert errors[0].startswith("ERROR: 2 bad line(s); nothing was loaded")
    assert [json.loads(line)["line"] for line in errors[1:]] == [3, 4]
    assert json.loads(errors[2]) == {"line": 4, "raw": "c,5", "reason": "2 columns, the header has 5"}

    nothing = xhuma("recon", "intake", "--process", "sim-ppu", env=env)
    assert "0 file(s) taken, 0 refused" in nothing.stdout
    (inbox / NAME.format(3)).write_text(GOOD)  # the same content under another name
    again = xhuma("recon", "intake", env=env, check=False)
    assert again.returncode == 1 and f"{NAME.format(3)}: refused: the same content as file" in again.stderr
    why = (inbox / "refused" / (NAME.format(3) + ".errors.txt")).read_text()
    assert why.startswith(f"refused: the same content as file {NAME.format(1)}")
    assert [f["status"] for f in files(env)] == ["LOADED", "ERROR"]  # a duplicate leaves no row
    assert [f["records"] for f in files(env)] == [2, 0]

    plain = tmp_path / "plain.toml"
    plain.write_text(PROVIDER + PROCESS)
    none = xhuma("recon", "intake", "--config", str(plain), env=env, check=False)
    assert none.returncode == 2 and "no inbox configured" in none.stderr


@pytest.fixture
def served(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[Server, Path, dict[str, str]]]:
    inbox = tmp_path / "inbox"
    config = config_with_inbox(tmp_path, inbox, seconds=0.2)
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config))
    admin = ("--username", ADMIN[0], "--password", ADMIN[1], "--client-id", "ops", "--role", "admin")
    xhuma("clients", "add", *admin, env=env)
    xhuma("clients", "add", "--username", "till", "--password", "pw", "--client-id", "r1", env=env)
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, tmp_path / "serve.log")
    yield server, inbox, env
    server.stop()


def test_post_admin_finance_files(served: tuple[Server, Path, dict[str, str]]) -> None:
    server, _, _ = served
    url = server.url + "/admin/finance/files"
    post = lambda name, body, process="sim-ppu", auth=ADMIN: httpx.post(  # noqa: E731
        url, params={"process": process, "name": name}, content=body, auth=auth
    )
    loaded = post(NAME.format(1), GOOD.encode())
    assert loaded.status_code == 201, loaded.text
    assert loaded.json() | {"id": "-"} == {
        "id": "-",
        "name": NAME.format(1),
        "process": "sim-ppu",
        "status": "LOADED",
        "records": 2,
        "amount": 250,
    }
    duplicate = post(NAME.format(2), GOOD.encode())
    assert duplicate.status_code == 409 and duplicate.json()["duplicate_of"]["id"] == loaded.json()["id"]
    many = HEADER + "".join(f"r{n},1.{n},2026-01-01T10:00:00Z,purchase,\n" for n in range(30))
    bad = post(NAME.format(3), many.encode())
    assert bad.status_code == 422, bad.text
    body = bad.json()
    assert body["status"] == "ERROR" and body["error"] == "30 bad line(s); nothing was loaded"
    assert len(body["errors"]) == 20 and body["more"] == 10
    assert body["errors"][0] == {
        "line": 2,
        "raw": "r0,1.0,2026-01-01T10:00:00Z,purchase,",
        "reason": "amount: '1.0' is not a whole number of cents",
    }
    badly_named = post("extract.csv", GOOD.replace("a,", "z,").encode())
    assert badly_named.status_code == 422 and badly_named.json()["errors"][0]["line"] == 0
    assert post(NAME.format(4), b"", process="nope").status_code == 404
    assert post("../x.csv", b"").status_code == 400
    assert post(NAME.format(4), GOOD.encode(), auth=("ops", "wrong")).status_code == 401
    assert post(NAME.format(4), GOOD.encode(), auth=("till", "pw")).status_code == 403

    listed = httpx.get(url, params={"process": "sim-ppu"}, auth=ADMIN)
    assert listed.status_code == 200
    assert [(f["name"], f["status"], f["records"]) for f in listed.json()] == [
        (NAME.format(1), "LOADED", 2),
        (NAME.format(3), "ERROR", 0),
        ("extract.csv", "ERROR", 0),
    ]
    assert httpx.get(url, params={"process": "nope"}, auth=ADMIN).status_code == 404
    audit = httpx.get(server.url + "/admin/audit", params={"action": "finance.files.take"}, auth=ADMIN).json()
    assert len(audit) == 4 and {entry["actor"] for entry in audit} == {"ops"}


def test_serve_polls_the_inbox(served: tuple[Server, Path, dict[str, str]]) -> None:
    server, inbox, env = served
    inbox.mkdir(exist_ok=True)
    for n, text in ((1, GOOD), (2, BAD)):  # written whole under another name, then renamed
        (inbox / f"{n}.part").write_text(text)
        (inbox / f"{n}.part").replace(inbox / NAME.format(n))
    errors = inbox / "refused" / (NAME.format(2) + ".errors.txt")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (errors.exists() and (inbox / "processed").exists()):
        time.sleep(0.1)
    assert not list(inbox.glob("*.csv")) and not list(inbox.glob("*.part"))
    assert [p.name for p in (inbox / "processed").iterdir()] == [NAME.format(1)]
    assert errors.read_text().startswith("ERROR: 2 bad line(s)")
    assert sorted(str(f["status"]) for f in files(env)) == ["ERROR", "LOADED"]
