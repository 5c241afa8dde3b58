"""OAuth2 over a real `xhuma serve`: the password and client-credentials grants, scopes,
revocation, expiry and key rotation, and the JWKS that verifies the tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import write_config
from tests.support import Server, process_env, serve_with_credentials, xhuma

APP = ("pos-app", "app-secret")  # the OAuth client (a credential of its own)
USER = ("till-o", "till-pw")
OPS = ("ops-o", "ops-pw")


@pytest.fixture(params=[60])
def server(
    fresh_database_url: str, simulator: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Server]:
    config = write_config(tmp_path / "xhuma.toml", simulator.url)
    config.write_text(config.read_text() + f"\n[oauth]\ntoken_seconds = {request.param}\n")
    env = process_env(XHUMA_DATABASE_URL=fresh_database_url, XHUMA_CONFIG=str(config), SIM_PASSWORD="sim-secret")
    credentials = [(*APP, "retail"), (*USER, "retail"), (*OPS, "admin")]
    running = serve_with_credentials(env, tmp_path, credentials)
    running.env = env  # type: ignore[attr-defined]
    yield running
    running.stop()


def grant(server: Server, **form: str) -> httpx.Response:
    return httpx.post(server.url + "/oauth/token", data=form)


def password_grant(server: Server, **extra: str) -> httpx.Response:
    return grant(
        server,
        grant_type="password",
        username=USER[0],
        password=USER[1],
        client_id=APP[0],
        client_secret=APP[1],
        **extra,
    )


def call(server: Server, token: str, path: str) -> int:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}).status_code


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_the_password_grant_gives_a_token_that_works_on_its_scopes_only(server: Server) -> None:
    answer = password_grant(server)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 60 and body["scope"] == "ppu suv"
    assert answer.headers["cache-control"] == "no-store"
    token = body["access_token"]
    assert {"sub", "client_id", "scope", "exp", "jti"} <= set(claims(token))
    assert (claims(token)["sub"], claims(token)["client_id"]) == (USER[0], APP[0])
    assert call(server, token, "/suv/v1/products") == 200
    assert call(server, token, "/admin/saf") == 403
    narrow = password_grant(server, scope="ppu").json()["access_token"]
    assert call(server, narrow, "/suv/v1/products") == 403


def test_client_credentials_and_the_refusals_rfc_6749_names(server: Server) -> None:
    answer = httpx.post(server.url + "/oauth/token", data={"grant_type": "client_credentials"}, auth=OPS)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert call(server, token, "/admin/saf") == 200 and call(server, token, "/suv/v1/products") == 403
    bad_secret = grant(server, grant_type="client_credentials", client_id=APP[0], client_secret="no")
    assert (bad_secret.status_code, bad_secret.json()["error"]) == (401, "invalid_client")
    bad_user = grant(
        server, grant_type="password", username=USER[0], password="no", client_id=APP[0], client_secret=APP[1]
    )
    assert (bad_user.status_code, bad_user.json()["error"]) == (400, "invalid_grant")
    assert grant(server, grant_type="implicit").json()["error"] == "unsupported_grant_type"
    assert password_grant(server, scope="admin").json()["error"] == "invalid_scope"
    assert call(server, "not.a.token", "/suv/v1/products") == 401


def test_revoked_tokens_are_refused(server: Server) -> None:
    env = server.env  # type: ignore[attr-defined]
    first, second = (password_grant(server).json()["access_token"] for _ in range(2))
    xhuma("tokens", "revoke", claims(first)["jti"], env=env)
    assert call(server, first, "/suv/v1/products") == 401
    assert call(server, second, "/suv/v1/products") == 200
    xhuma("tokens", "revoke", "--client", USER[0], env=env)
    assert call(server, second, "/suv/v1/products") == 401
    time.sleep(1.1)  # a token issued after the revocation (to the second) is not affected by it
    later = password_grant(server).json()["access_token"]
    assert call(server, later, "/suv/v1/products") == 200
    audit = xhuma("audit", "list", "--json", env=env).stdout
    assert "tokens.revoke" in audit and "tokens.revoke_all" in audit


@pytest.mark.parametrize("server", [3], indirect=True)
def test_an_expired_token_is_refused(server: Server) -> None:
    token = password_grant(server).json()["access_token"]
    assert call(server, token, "/suv/v1/products") == 200
    time.sleep(4.5)  # token_seconds = 3
    assert call(server, token, "/suv/v1/products") == 401


def test_a_rotated_key_keeps_verifying_and_the_jwks_publishes_both(server: Server) -> None:
    env = server.env  # type: ignore[attr-defined]
    before = password_grant(server).json()["access_token"]
    xhuma("tokens", "rotate-key", env=env)
    keys = httpx.get(server.url + "/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 2 and all("d" not in key for key in keys)  # public halves only
    assert call(server, before, "/suv/v1/products") == 200
    published = {key["kid"]: key for key in keys}
    kid = jwt.get_unverified_header(before)["kid"]
    verified = jwt.decode(before, jwt.PyJWK(published[kid]), algorithms=["ES256"], issuer="xhuma")
    assert verified["sub"] == USER[0]
