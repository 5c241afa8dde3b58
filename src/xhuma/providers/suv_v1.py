"""Adapter for voucher providers that speak the Single Use Voucher interface v1 themselves: the
mapping is the identity apart from the provider's product code, which the switch puts in."""

from __future__ import annotations

from typing import Any

from xhuma.providers.base import UpstreamCall
from xhuma.providers.http import JsonHttpAdapter, json_encode
from xhuma.vouchers.operations import SuvOperation


class SuvV1Adapter(JsonHttpAdapter):
    def prepare(
        self, operation: SuvOperation, message: dict[str, Any], provision_id: str | None = None
    ) -> UpstreamCall:
        path = operation.upstream_path(provision_id)
        return UpstreamCall(operation, operation.method, self.base_url + path, json_encode(message))
