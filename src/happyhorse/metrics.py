"""The process's own Prometheus metrics (``prometheus_client``'s default registry).

What every API node must report alike — queue depth, tasks by outcome, credits — is read from the
database at scrape time instead (``store.metrics_queries``): counting those per process would make
each node tell a different story.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RENDER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800)

HTTP_REQUESTS = Counter(
    "happyhorse_http_requests_total", "HTTP requests answered, by route and status.", ["route", "status"]
)
HTTP_DURATION = Histogram(
    "happyhorse_http_request_duration_seconds", "Time to answer an HTTP request, by route.", ["route"]
)
RENDER_SECONDS = Histogram(
    "happyhorse_render_seconds",
    "Time a render took in this process (fetch to stored).",
    ["engine", "mode", "type"],
    buckets=RENDER_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "happyhorse_webhook_deliveries_total", "Webhook delivery attempts sent from this process, by outcome.", ["outcome"]
)
