"""The monitoring routes: /health/services (each service and provider, HEALTHY or UNHEALTHY and
why) and /metrics (Prometheus text). Both need the "admin" role: they name providers and their
failures, which is operator information (a Prometheus scraper authenticates with `basic_auth`),
and both sit behind the operator API's address fence (`[switch] admin_networks`)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xhuma.api.access import protect
from xhuma.api.admin import deny_operator
from xhuma.api.replies import json_reply
from xhuma.monitoring import WINDOW_SECONDS, metrics_text, services_health
from xhuma.node import Node
from xhuma.validation import whole_number


def monitoring_routes(node: Node) -> list[Route]:
    async def health_services(request: Request) -> Response:
        window = whole_number(request.query_params.get("window", str(WINDOW_SECONDS)), low=10, high=86_400)
        if window is None:
            return json_reply(
                {"error": "window must be a whole number of seconds from 10 to 86400", "field": "window"}, 400
            )
        return json_reply(await services_health(node, window))

    async def metrics(_request: Request) -> Response:
        return Response(await metrics_text(node), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health/services", protect("admin", deny_operator, health_services), methods=["GET"]),
        Route("/metrics", protect("admin", deny_operator, metrics), methods=["GET"]),
    ]
