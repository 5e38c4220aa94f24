"""The outermost ASGI layer: a request id on every response (``X-Request-Id``, also in JSON logs),
request counts and durations by route, and ``GET /metrics`` in the Prometheus text format."""

from __future__ import annotations

import functools
import hmac
import os
import re
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from happyhorse import logs
from happyhorse.metrics import HTTP_DURATION, HTTP_REQUESTS
from happyhorse.store.db import Database
from happyhorse.store.metrics_queries import Figures, figures
from happyhorse.task_status import TaskStatus

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNROUTED = ("/api/status", "/metrics")  # answered ahead of the router (fast path, this layer)
OUTCOME: dict[str, str] = {
    TaskStatus.SUCCESS: "succeeded",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}


def header(scope: Scope, name: bytes) -> bytes:
    """One request header's raw value (b"" if absent), without building a dict of all of them."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return b""


@functools.lru_cache(maxsize=1024)
def _series(route: str, status: int) -> tuple[Any, Any]:
    """The request counter and duration histogram of one route and status: looked up once, not per request."""
    return HTTP_REQUESTS.labels(route, str(status)), HTTP_DURATION.labels(route)


def route_of(scope: Scope) -> str:
    """The route template (``/api/tasks/{task_id}``), never the raw path: labels stay few."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    return scope["path"] if scope.get("path") in UNROUTED else "unmatched"


class Observe:
    def __init__(self, app: ASGIApp, database: Callable[[], Database], metrics_token: str | None) -> None:
        self.app = app
        self.database = database  # the app's, once its lifespan has opened it
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id").decode("latin-1")
        rid = incoming if SAFE_REQUEST_ID.match(incoming) else os.urandom(8).hex()
        logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            if scope["path"] == "/metrics":
                await self.metrics(scope, send_observed)
            else:
                await self.app(scope, receive, send_observed)
        finally:
            requests, duration = _series(route_of(scope), status)
            requests.inc()
            duration.observe(time.perf_counter() - started)

    async def metrics(self, scope: Scope, send: Send) -> None:
        if self.metrics_token:
            given = header(scope, b"authorization").decode("latin-1")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.metrics_token}".encode()):
                await _respond(
                    send,
                    401,
                    b"metrics need Authorization: Bearer <HAPPYHORSE_METRICS_TOKEN>\n",
                    b"text/plain; charset=utf-8",
                )
                return
        async with self.database().read() as session:
            deployment = await figures(session)
        local = CollectorRegistry()
        local.register(DeploymentCollector(deployment))
        body = generate_latest(REGISTRY) + generate_latest(local)
        await _respond(send, 200, body, CONTENT_TYPE_LATEST.encode())


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class DeploymentCollector(Collector):
    """The database's figures as metric families, for one scrape."""

    def __init__(self, data: Figures) -> None:
        self.data = data

    def collect(self):  # type: ignore[no-untyped-def]
        tasks = CounterMetricFamily(
            "happyhorse_tasks", "Tasks that ended, by mode, type and outcome.", labels=["mode", "type", "outcome"]
        )
        for mode, kind, status, count in self.data.finished:
            tasks.add_metric([mode, kind, OUTCOME.get(status, status.lower())], count)
        yield tasks
        yield GaugeMetricFamily(
            "happyhorse_queue_depth", "Tasks waiting for an engine (the whole deployment).", value=self.data.queued
        )
        yield GaugeMetricFamily(
            "happyhorse_tasks_running", "Tasks rendering now (the whole deployment).", value=self.data.running
        )
        yield CounterMetricFamily(
            "happyhorse_credits_debited", "Credits taken for accepted tasks.", value=self.data.debited
        )
        yield CounterMetricFamily(
            "happyhorse_credits_refunded", "Credits given back for failed or cancelled tasks.", value=self.data.refunded
        )
