"""The app factory: wires settings, database, result store, rate limits and the dispatcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from happyhorse.config import Settings
from happyhorse.dispatch.factory import create_dispatcher
from happyhorse.engines.registry import request_checker
from happyhorse.metrics import WEBHOOK_DELIVERIES
from happyhorse.server import health, routes_api, routes_files, routes_tasks, status_stream, uploads
from happyhorse.server.api_docs import install_api_docs
from happyhorse.server.body_limit import BodyLimit
from happyhorse.server.compat import dashscope as compat_dashscope
from happyhorse.server.dashboard import mount_dashboard
from happyhorse.server.errors import install_error_handlers
from happyhorse.server.openapi import GENERATE_BODY_DEFS
from happyhorse.server.presenters import task_data
from happyhorse.server.ratelimit import KeyRateLimiter, QuotaHeaders
from happyhorse.server.services import Services, install
from happyhorse.server.status_stream import StatusStreams
from happyhorse.server.url_guard import NulGuard
from happyhorse.storage import create_store
from happyhorse.storage.base import ResultStore
from happyhorse.storage.uploads import create_upload_store
from happyhorse.store.db import Database
from happyhorse.store.hot_reads import HotReads, sqlite_file
from happyhorse.store.queue_info import QueueInfo
from happyhorse.tasks.events import TaskEvent
from happyhorse.tasks.retention import RetentionSweeper, sweep_uploads
from happyhorse.webhooks.deliverer import Deliverer
from happyhorse.worker.scratch import claim_work_dir

log = logging.getLogger("happyhorse.server")

DESCRIPTION = """A self-hosted server for the **HappyHorse 1.0** video-generation API.

Create a task with `POST /api/generate`, poll `GET /api/status?task_id=…` until it is `SUCCESS` or
`FAILED`, then play `data.response.resultUrls[0]`. Authenticate with `Authorization: Bearer YOUR_API_KEY`.
"""


def own_base_url(settings: Settings) -> str:
    """Where this server is reached when no request says so (webhook bodies' result URLs)."""
    if settings.public_url:
        return str(settings.public_url).rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def start_deliverer(settings: Settings, db: Database, store: ResultStore) -> Deliverer:
    base = own_base_url(settings)
    deliverer = Deliverer(
        db,
        retries=settings.webhook_retries,
        delays=settings.webhook_retry_delays,
        allow_private=settings.allow_private_urls,
        task_view=lambda task: task_data(task, store, base, settings.result_retention),
        on_outcome=lambda verdict: WEBHOOK_DELIVERIES.labels(verdict).inc(),
    )
    deliverer.start()
    return deliverer


def wake_on_terminal(deliverer: Deliverer) -> Callable[[TaskEvent], Awaitable[None]]:
    """A task ended (on any node): its webhooks are due now, not at the deliverer's next poll."""

    async def on_event(event: TaskEvent) -> None:
        if event.kind in ("succeeded", "failed", "cancelled"):
            deliverer.poke()

    return on_event


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        if settings.dispatch_mode == "embedded":  # this process renders: what a killed render left goes
            claim_work_dir(settings.data_dir / "work")
        if settings.allow_private_urls:
            log.warning(
                "HAPPYHORSE_ALLOW_PRIVATE_URLS is on: image URLs may point at private and loopback "
                "addresses. Use this for local development only."
            )
        db = Database(settings.resolved_database_url, busy_timeout=settings.db_busy_timeout)
        store = create_store(settings)
        uploads = create_upload_store(settings, store)
        dispatcher = create_dispatcher(settings, db, store)
        hot_reads = HotReads(db, sqlite_file(db.url))
        held = Services(
            settings=settings,
            db=db,
            store=store,
            uploads=uploads,
            limiter=KeyRateLimiter(
                settings.rate_limit_storage,
                {"generate": settings.rate_limit_generate, "status": settings.rate_limit_status},
            ),
            check_request=request_checker(settings),
            hot_reads=hot_reads,
            queue_info=QueueInfo(hot_reads),
            dispatcher=dispatcher,
            health=health.Health(db, settings.data_dir, dispatcher),
            status_streams=StatusStreams(),
            deliverer=start_deliverer(settings, db, store),
        )
        install(app, held)
        hub = held.events  # the event seam: subscribers before the first transition
        hub.subscribe(held.status_streams.on_event, "status-streams")
        hub.subscribe(wake_on_terminal(held.deliverer), "webhook-deliverer")
        await dispatcher.start()
        sweeper = RetentionSweeper(
            db,
            store,
            settings.result_retention,
            settings.retention_sweep_interval,
            [lambda: sweep_uploads(db, uploads, settings.result_retention)],
        )
        sweeper.start()
        try:
            yield
        finally:
            await held.deliverer.stop()
            await sweeper.stop()
            await dispatcher.stop()
            hot_reads.close()
            await db.dispose()

    otel = settings.telemetry
    app = FastAPI(
        title="happyhorse",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
        docs_url=None,
        redoc_url=None,
    )  # api_docs serves them from the package
    install_error_handlers(app)
    app.add_middleware(QuotaHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # before any parsing
    app.add_middleware(NulGuard)  # outermost: a NUL in the URL is a 400 before anything reads it
    app.include_router(routes_api.router)
    app.include_router(compat_dashscope.router)
    app.include_router(routes_tasks.router)
    app.include_router(status_stream.router)
    app.include_router(routes_files.router)
    app.include_router(uploads.router)
    from happyhorse.server.compat import openai as openai_compat

    app.include_router(openai_compat.router)  # /v1/videos: OpenAI Videos

    app.include_router(health.router)  # /healthz

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(GENERATE_BODY_DEFS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_api_docs(app)
    mount_dashboard(app, settings)
    return app
