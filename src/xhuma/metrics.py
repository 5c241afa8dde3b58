"""The process's Prometheus metrics: what the engine counts as it answers (requests by outcome,
each leg's latency) and what the database threads time (commits).

Counters and histograms live in this process's memory (`prometheus_client` is thread-safe, so a
database thread may observe too). When `PROMETHEUS_MULTIPROC_DIR` is set before the process
starts, prometheus-client keeps them in memory-mapped files in that folder instead, and any
process answering /metrics sums every process's files (`monitoring.metrics_text`): several
`serve` processes on one host then read as one. Figures read from the database at scrape time
(the store-and-forward queue, reconciliation exceptions) are not kept here: they are the same
from every process, so they are computed by the scrape (`monitoring`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.context_managers import Timer

from xhuma.domain.outcomes import Outcome

APPROVED, DECLINED, ERROR, UNKNOWN = "approved", "declined", "error", "unknown"

REQUESTS = Counter(
    "xhuma_requests",
    "Requests answered after asking a provider, by how they ended",
    ["service", "operation", "provider", "outcome"],
)
LEG_SECONDS = Histogram(
    "xhuma_leg_seconds",
    "Latency of each leg: retail (the retailer's request to our answer) and upstream (the provider's)",
    ["service", "leg"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
COMMIT_SECONDS = Histogram(
    "xhuma_db_commit_seconds",
    "One database transaction on a database thread, from BEGIN to COMMIT returned (a group commit is one)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def outcome_label(outcome: Outcome, status: int | None, delivered: bool) -> str:
    """approved; declined (the provider answered no: a business decline); error (no answer that
    says anything: the connection failed, or 5xx that is not "unknown"); unknown (money may have
    moved: followed up by store-and-forward)."""
    if outcome is Outcome.SUCCESSFUL:
        return APPROVED
    if outcome is Outcome.UNKNOWN:
        return UNKNOWN
    if delivered and status is not None and status < 500:
        return DECLINED
    return ERROR


def count_request(service: str, operation: str, provider: str, label: str, upstream_us: int) -> None:
    REQUESTS.labels(service, operation, provider, label).inc()
    LEG_SECONDS.labels(service, "upstream").observe(upstream_us / 1e6)


def retail_leg(service: str) -> Timer:
    """Times a retail request from the switch taking it to its answer (`with retail_leg(...)`)."""
    return LEG_SECONDS.labels(service, "retail").time()
