"""Well-formed retail PPU messages, for the demo, the benchmarks and the tests: one place that
knows what a valid originator looks like."""

from __future__ import annotations

import uuid
from typing import Any

from xhuma.engine.flow import rfc3339_now


def retail_message(
    client_id: str, *, client_name: str = "Retailer", terminal_id: str = "TILL0001", **fields: Any
) -> dict[str, Any]:
    """A request from a till: a fresh id and time, a full originator, and `fields` on top."""
    return {
        "id": str(uuid.uuid4()),
        "time": rfc3339_now(),
        "originator": {
            "institution": {"id": client_id, "name": client_name},
            "terminalId": terminal_id,
            "merchant": {
                "merchantType": "5411",
                "merchantId": "MERCHANT0000001",
                "merchantName": {"name": "Corner Shop", "city": "Cape Town", "region": "WC", "country": "ZA"},
            },
        },
        "client": {"id": client_id, "name": client_name},
        "thirdPartyIdentifiers": [],
        **fields,
    }
