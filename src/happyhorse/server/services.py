"""What a running app holds, in one typed place.

The app's lifespan builds one :class:`Services` and keeps it on the app; routes reach it with
:func:`services` (usable as a ``Depends``), so every attribute a route reads is
declared here with its type and mypy checks each use. Nothing else is kept on ``app.state``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from starlette.requests import Request
from starlette.types import ASGIApp

from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest
from happyhorse.dispatch.base import Dispatcher
from happyhorse.server.ratelimit import KeyRateLimiter
from happyhorse.storage.base import ResultStore
from happyhorse.storage.uploads import UploadStore
from happyhorse.store.db import Database
from happyhorse.store.hot_reads import HotReads
from happyhorse.store.queue_info import QueueInfo
from happyhorse.tasks.events import EventHub
from happyhorse.webhooks.deliverer import Deliverer

if TYPE_CHECKING:  # these modules hold routes that read Services: importing them here would be a cycle
    from happyhorse.server.health import Health
    from happyhorse.server.status_stream import StatusStreams


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ResultStore  # where result videos live (local directory or S3)
    uploads: UploadStore  # where uploaded input images live (beside the results)
    limiter: KeyRateLimiter  # per-key rules: "generate" and "status"
    check_request: Callable[[GenerateRequest], None]  # what this engine cannot do: InvalidRequest at submit
    hot_reads: HotReads  # the status poll's one query
    queue_info: QueueInfo  # a queued task's position and estimate
    dispatcher: Dispatcher
    health: Health
    status_streams: StatusStreams
    deliverer: Deliverer  # webhook deliveries
    key_touched: dict[str, float] = field(default_factory=dict)  # key id -> when last_used_at was last written
    key_touches: set[asyncio.Task[None]] = field(default_factory=set)  # last_used_at writes in flight (server.auth)

    @property
    def events(self) -> EventHub:
        """The task-event seam: subscribe at start-up, before the first transition."""
        return self.dispatcher.events


def install(app: ASGIApp, held: Services) -> None:
    app.state.services = held  # type: ignore[attr-defined]


def services_of(app: ASGIApp) -> Services:
    return cast(Services, app.state.services)  # type: ignore[attr-defined]


def services(request: Request) -> Services:
    return services_of(request.app)
