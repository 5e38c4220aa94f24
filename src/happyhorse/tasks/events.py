"""The one event seam: every task transition emits a ``TaskEvent`` after its transaction commits.

A transition records its event on the session (``record``); nothing leaves before the commit:

* in-process (embedded mode), the event waits in ``session.info`` and is handed to the hub by
  SQLAlchemy's ``after_commit`` hook; a rollback drops it;
* across nodes (distributed mode), the transition issues ``pg_notify`` in its own transaction.
  PostgreSQL delivers a notification only when that transaction commits (and never if it rolls
  back), so "after commit" is the database's guarantee, not ours. Every API node holds one
  ``LISTEN`` connection (``PgListener``) and fans each notification out to its local subscribers;
  workers only NOTIFY.

Subscribers are async callables registered at start-up. Each has its own bounded queue drained by
its own asyncio task: a slow subscriber delays only itself (when its queue is full its oldest
events are dropped, with a warning), and one that raises is logged and keeps receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger("happyhorse.events")

CHANNEL = "happyhorse_task_events"
QUEUE_SIZE = 1000
_PENDING = "happyhorse_pending_events"

EventKind = Literal["accepted", "started", "progress", "succeeded", "failed", "requeued", "cancelled"]
Subscriber = Callable[["TaskEvent"], Awaitable[None]]


@dataclass(frozen=True)
class TaskEvent:
    task_id: str
    account_id: str
    kind: EventKind
    status: str  # the stored status after the transition (a TaskStatus value)
    progress: int
    at: datetime
    attempt: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> TaskEvent:
        data: dict[str, Any] = json.loads(raw)
        data["at"] = datetime.fromisoformat(data["at"])
        return cls(**data)


def now() -> datetime:
    return datetime.now(UTC)


class _Subscription:
    def __init__(self, callback: Subscriber, name: str) -> None:
        self.callback = callback
        self.name = name
        self.queue: asyncio.Queue[TaskEvent] = asyncio.Queue(QUEUE_SIZE)
        self.runner: asyncio.Task[None] | None = None

    def offer(self, event: TaskEvent) -> None:
        if self.runner is None or self.runner.done():
            self.runner = asyncio.get_running_loop().create_task(self._drain(), name=f"events:{self.name}")
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            log.warning("event subscriber %s is behind; dropped its oldest event", self.name)
        self.queue.put_nowait(event)

    async def _drain(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.callback(event)
            except Exception:
                log.exception("event subscriber %s failed on %s %s", self.name, event.kind, event.task_id)


class EventHub:
    """Fans task events out to this process's subscribers.

    ``notify=True`` (distributed mode): transitions publish through PostgreSQL ``NOTIFY`` and local
    delivery comes only from a ``PgListener`` (so an API node's own events arrive once, like any
    other node's). ``notify=False``: delivery straight after the commit, in this process.
    """

    def __init__(self, notify: bool = False) -> None:
        self.notify = notify
        self._subscriptions: list[_Subscription] = []

    def subscribe(self, callback: Subscriber, name: str | None = None) -> None:
        label = name or str(getattr(callback, "__qualname__", "subscriber"))
        self._subscriptions.append(_Subscription(callback, label))

    def deliver(self, event: TaskEvent) -> None:
        """Hand an event to every subscriber; never blocks and never raises."""
        for sub in self._subscriptions:
            try:
                sub.offer(event)
            except Exception:
                log.exception("could not queue %s for subscriber %s", event.kind, sub.name)

    async def close(self) -> None:
        for sub in self._subscriptions:
            if sub.runner is not None:
                sub.runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sub.runner


_process_hub = EventHub()


def process_hub() -> EventHub:
    """The hub this process's transitions publish to when the caller names none."""
    return _process_hub


def install(hub: EventHub) -> None:
    """Make ``hub`` the process's hub (the app's lifespan, or a worker, at start-up)."""
    global _process_hub
    _process_hub = hub


async def record(session: AsyncSession, hub: EventHub | None, event: TaskEvent) -> None:
    """Publish ``event`` when the session's transaction commits (never inside it, never on rollback)."""
    hub = hub or _process_hub
    if hub.notify:
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": event.to_json()}
        )
        return
    session.sync_session.info.setdefault(_PENDING, []).append((hub, event))


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for hub, event in pending or ():
        hub.deliver(event)


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: Any) -> None:
    if getattr(previous, "parent", None) is None:  # the outermost transaction rolled back
        session.info.pop(_PENDING, None)


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) → ``postgresql://…`` (libpq)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PgListener:
    """One ``LISTEN`` connection per API node that hands every task event to the local hub.

    Reconnects with a short backoff when the connection drops (events sent meanwhile are missed:
    subscribers that must not miss one re-read the task table on reconnect, see ``on_connect``).
    """

    def __init__(
        self, database_url: str, hub: EventHub, on_connect: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.conninfo = libpq_url(database_url)
        self.hub = hub
        self.on_connect = on_connect
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="happyhorse-event-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import psycopg

        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.ready.set()
                    backoff = 0.5
                    if self.on_connect is not None:
                        await self.on_connect()
                    async for note in conn.notifies():
                        try:
                            self.hub.deliver(TaskEvent.from_json(note.payload))
                        except Exception:
                            log.exception("unreadable task event: %r", note.payload[:200])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("task event listener lost its connection; reconnecting", exc_info=True)
            self.ready.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
