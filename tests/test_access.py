"""One authentication layer: every route, generated from the server's own route table, refuses
a request without valid credentials and each credential kind without its scope; allowlists;
locking a username after failed logins (a real `xhuma serve`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tests.conftest import Switch, write_config
from tests.support import Server, free_port, new_id, process_env, serve_with_credentials, xhuma
from xhuma.api.app import create_app
from xhuma.config import Settings
from xhuma.security.lockout import Lockout

OPEN_ROUTES = {"/health", "/openapi.json", "/oauth/token", "/.well-known/jwks.json"}
SCOPE_OF_PREFIX = (
    ("/prepaidutility/", "ppu"),
    ("/suv/", "suv"),
    ("/admin/finance/approvals/", "approve"),
    ("/admin/finance/approvals", "finance"),
    ("/admin/finance/settlements", "finance"),
    ("/admin/", "admin"),
    ("/inbound/", "bank"),
    ("/health/services", "admin"),
    ("/metrics", "admin"),
)
KINDS = {
    "retail": ("till", "s3cret-till"),
    "admin": ("access-ops", "ops-pw"),
    "bank": ("access-bank", "bank-pw"),
    "finance": ("access-maker", "maker-pw"),
    "approver": ("access-checker", "checker-pw"),
}
SCOPES = {
    "retail": {"ppu", "suv"},
    "admin": {"admin"},
    "bank": {"bank"},
    "finance": {"finance"},
    "approver": {"finance", "approve"},
}


def served_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'routes.db'}"))
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    )


def concrete(path: str) -> str:
    """A path with each parameter filled in with a well-formed value."""
    return re.sub(r"\{[^}]+\}", lambda m: "42" if m.group(0) == "{entry_id}" else new_id(), path)


@pytest.fixture(scope="module")
def kinds(switch: Switch) -> Switch:
    for kind in ("admin", "bank", "finance", "approver"):
        username, password = KINDS[kind]
        switch.cli(
            "clients", "add", "--username", username, "--password", password, "--client-id", username, "--role", kind
        )
    return switch


def test_every_route_refuses_missing_credentials_and_credentials_without_its_scope(
    kinds: Switch, tmp_path: Path
) -> None:
    routes = served_routes(tmp_path)
    assert len(routes) > 40
    for method, path in routes:
        url = kinds.url + concrete(path)
        if path in OPEN_ROUTES:
            assert httpx.request(method, url).status_code in (200, 400), path
            continue
        scope = next(s for prefix, s in SCOPE_OF_PREFIX if path.startswith(prefix))
        assert httpx.request(method, url, content=b"{}").status_code == 401, (method, path)
        assert httpx.request(method, url, content=b"{}", auth=("till", "wrong")).status_code == 401, (method, path)
        for kind, auth in KINDS.items():
            status = httpx.request(method, url, content=b"{}", auth=auth).status_code
            if scope in SCOPES[kind]:
                assert status not in (401, 403), (kind, method, path, status)
            else:
                assert status == 403, (kind, method, path, status)


@pytest.fixture
def fenced(fresh_database_url: str, simulator: Server, tmp_path: Path) -> Iterator[Server]:
    config = write_config(tmp_path / "xhuma.toml", simulator.url)
    config.write_text(config.read_text().replace("[switch]\n", "[switch]\nlockout_seconds = 600\n"))
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret")
    for username, networks in (("near", ["127.0.0.0/8"]), ("far", ["10.1.0.0/16", "192.168.0.0/24"]), ("other", [])):
        allow = [arg for network in networks for arg in ("--allow", network)]
        xhuma("clients", "add", "--username", username, "--password", "pw", "--client-id", username, *allow, env=env)
    port = free_port()
    server = Server(["serve", "--port", str(port)], port, env, tmp_path / "switch.log")
    yield server
    server.stop()


def test_a_credential_used_from_outside_its_networks_is_refused_before_its_body_is_read(fenced: Server) -> None:
    products = fenced.url + "/suv/v1/products"
    assert httpx.get(products, auth=("near", "pw")).status_code == 200
    assert httpx.get(products, auth=("other", "pw")).status_code == 200
    refused = httpx.post(fenced.url + "/suv/v1/vouchers", content=b"not even json", auth=("far", "pw"))
    assert refused.status_code == 403 and refused.json()["errorType"] == "AUTHENTICATION_ERROR"


@pytest.fixture(params=[False, True], ids=["answer", "close"])
def operators_fenced(
    fresh_database_url: str, simulator: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """A switch whose /admin API is open to 10.0.0.0/8 only (the tests call from 127.0.0.1), with
    refusals by address answered 403 or by closing the connection."""
    config = write_config(tmp_path / "xhuma.toml", simulator.url)
    fence = f'admin_networks = ["10.0.0.0/8"]\nclose_on_unlisted_address = {str(request.param).lower()}\n'
    config.write_text(config.read_text().replace("[switch]\n", "[switch]\n" + fence))
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret")
    far = ("--username", "far", "--password", "far-pw", "--client-id", "far", "--allow", "10.1.0.0/16")
    xhuma("clients", "add", *far, env=env)
    server = serve_with_credentials(env, tmp_path, [("ops", "ops-pw", "admin"), ("till", "till-pw", "retail")])
    server.closes = request.param  # type: ignore[attr-defined]
    server.env = env  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_the_operator_api_answers_only_its_networks_and_the_rest_is_unaffected(operators_fenced: Server) -> None:
    url = operators_fenced.url
    if operators_fenced.closes:  # type: ignore[attr-defined]
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url + "/admin/saf", auth=("ops", "ops-pw"))
    else:
        refused = httpx.get(url + "/admin/saf", auth=("ops", "ops-pw"))
        assert refused.status_code == 403
        assert refused.json() == {"error": "the operator API is not open to 127.0.0.1", "field": "address"}
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/suv/v1/products", auth=("till", "till-pw")).status_code == 200


def test_a_credential_from_outside_its_networks_is_answered_403_or_cut_and_journalled_either_way(
    operators_fenced: Server,
) -> None:
    lookup = operators_fenced.url + f"/prepaidutility/v3/meterLookups/{new_id()}"
    if operators_fenced.closes:  # type: ignore[attr-defined]
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(lookup, json={}, auth=("far", "far-pw"))
    else:
        assert httpx.post(lookup, json={}, auth=("far", "far-pw")).status_code == 403
    listed = xhuma("tx", "rejected", "--json", env=operators_fenced.env).stdout  # type: ignore[attr-defined]
    assert "far may not be used from 127.0.0.1" in listed


def test_five_bad_passwords_lock_the_user_and_not_another(fenced: Server) -> None:
    products = fenced.url + "/suv/v1/products"
    for _ in range(5):
        assert httpx.get(products, auth=("near", "wrong")).status_code == 401
    locked = httpx.get(products, auth=("near", "pw"))
    assert locked.status_code == 429 and locked.headers["retry-after"]
    assert httpx.get(products, auth=("other", "pw")).status_code == 200


def test_bad_networks_are_refused_by_the_cli(fresh_database_url: str) -> None:
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url)
    args = ["clients", "add", "--username", "x", "--password", "pw", "--client-id", "x", "--allow", "10.1.0.1/16"]
    result = xhuma(*args, env=env, check=False)
    assert result.returncode != 0 and "10.1.0.1/16" in result.stdout + result.stderr


def test_the_lockout_counts_failures_within_its_window_per_username() -> None:
    lockout = Lockout(max_failures=5, window_seconds=60, lock_seconds=300)
    for second in (0, 10, 20, 30):
        assert not lockout.failed("a", second)
    assert not lockout.failed("a", 61)  # the first failure has left the window: four in it now
    assert lockout.failed("a", 62)
    assert lockout.locked("a", 100) and not lockout.locked("b", 100)
    assert not lockout.locked("a", 362)
    lockout.failed("b", 0)
    lockout.succeeded("b")
    assert all(not lockout.failed("b", t) for t in (1, 2, 3, 4))
