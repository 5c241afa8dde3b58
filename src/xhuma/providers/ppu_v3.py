"""Adapter for providers that speak the Prepaid Utility Service Interface v3 themselves: our
canonical message is already PPU v3, so the mapping is the identity and only the path is added."""

from __future__ import annotations

from typing import Any

from xhuma.ppu.operations import Operation
from xhuma.providers.base import UpstreamCall
from xhuma.providers.http import JsonHttpAdapter, json_encode


class PpuV3Adapter(JsonHttpAdapter):
    def prepare(self, operation: Operation, message: dict[str, Any], request_id: str | None = None) -> UpstreamCall:
        path = operation.upstream_path(message["id"], request_id)
        return UpstreamCall(operation, "POST", self.base_url + path, json_encode(message))
