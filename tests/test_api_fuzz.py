"""Schemathesis against a running switch, from its own /openapi.json: every route, with bodies,
paths and queries generated from the document (valid and not), answers no 5xx and only statuses
the document lists for that route."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.conftest import Switch
from xhuma.api.openapi import build_openapi

schema = schemathesis.openapi.from_dict(build_openapi())
ADMIN = ("fuzz-ops", "fuzz-ops-pw")
BANK = ("fuzz-bank", "fuzz-bank-pw")
RETAIL = ("till", "s3cret-till")


@pytest.fixture(scope="module")
def credentials(switch: Switch) -> Switch:
    for (username, password), role in ((ADMIN, "admin"), (BANK, "bank")):
        switch.cli(
            "clients", "add", "--username", username, "--password", password, "--client-id", username, "--role", role
        )
    return switch


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_answers_a_5xx_or_an_undocumented_status(case: schemathesis.Case, credentials: Switch) -> None:
    path = case.operation.path
    auth = ADMIN if path.startswith("/admin/") else BANK if path.startswith("/inbound/") else RETAIL
    case.call_and_validate(
        base_url=credentials.url,
        auth=auth,
        timeout=30,
        checks=[not_a_server_error, status_code_conformance],
    )


def test_the_served_document_is_the_one_fuzzed(credentials: Switch) -> None:
    assert httpx.get(credentials.url + "/openapi.json").json() == build_openapi()
