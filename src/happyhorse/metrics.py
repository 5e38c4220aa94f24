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
for _outcome in ("delivered", "retrying", "failed"):  # every outcome shows, at 0 until it happens
    WEBHOOK_DELIVERIES.labels(_outcome)


def serve_metrics(port: int, addr: str, token: str | None) -> None:
    """This process's metrics at ``http://addr:port/metrics`` from a daemon thread (``happyhorse worker
    --metrics-port``), behind ``Authorization: Bearer <token>`` when a token is set, as the API's are."""
    import hmac
    import threading
    from typing import Any
    from wsgiref.simple_server import WSGIRequestHandler, make_server
    from wsgiref.types import StartResponse, WSGIEnvironment

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line each
            pass

    metrics_app = make_wsgi_app()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode("latin-1")
        if token and not hmac.compare_digest(given, f"Bearer {token}".encode()):
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"metrics need Authorization: Bearer <HAPPYHORSE_METRICS_TOKEN>\n"]
        return list(metrics_app(environ, start_response))

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
