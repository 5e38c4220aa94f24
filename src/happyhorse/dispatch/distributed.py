"""The API side of distributed mode: defer a procrastinate job for each new task, sweep, cancel.

Enqueue happens right after the transaction that debited the credits and inserted the task has
committed, with ``queueing_lock=task_id``. Not in the same transaction because the task is written
through SQLAlchemy and procrastinate defers through its own psycopg pool; sharing one transaction
would mean calling procrastinate's SQL functions by hand. The gap this leaves (the API dies, or the
defer fails, after the commit) is closed by the sweeper, which sends a job for any QUEUED task that
has none; the queueing lock keeps that from piling up duplicates, and a duplicate that slips through
is harmless because only one worker can claim the task.
"""

from __future__ import annotations

import logging

from happyhorse.config import Settings
from happyhorse.dispatch.procrastinate_app import create_app, defer_render, open_checked
from happyhorse.dispatch.sweeper import Sweeper
from happyhorse.storage.base import ResultStore
from happyhorse.store import jobs as job_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub, PgListener
from happyhorse.tasks.events import install as install_events

log = logging.getLogger("happyhorse.dispatch")

CANCELLED_MESSAGE = service.CANCELLED_MESSAGE


class DistributedDispatcher:
    def __init__(self, db: Database, settings: Settings, store: ResultStore) -> None:
        self.db = db
        self.settings = settings
        self.app = create_app(settings.resolved_database_url)
        # transitions NOTIFY in their transaction; this node hears every node's events (its own too)
        self.events = EventHub(notify=True)
        self.sweeper = Sweeper(db, self.app, settings, store, self.events)
        self.listener = PgListener(settings.resolved_database_url, self.events)

    async def start(self) -> None:
        await open_checked(self.app)
        install_events(self.events)
        await self.listener.start()
        self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.listener.stop()
        await self.app.close_async()

    async def enqueue(self, task_id: str) -> None:
        try:
            await defer_render(self.app, task_id, self.settings.queue)
        except Exception:  # the task is committed and paid for: the sweeper will send its job
            log.exception("could not defer a job for task %s; the sweeper will retry", task_id)

    async def problem(self) -> str | None:
        """None: an API node does not render; its sweeper survives any outage by itself, and a database
        that refuses writes is ``/healthz``'s own probe."""
        return None

    async def cancel(self, task_id: str, account_id: str | None = None) -> bool:
        """End the task CANCELLED and refunded, then stop its job; False if it had already ended.

        The task row is the flag: once it is no longer RUNNING, the worker's heartbeat write fails
        and it stops the render, and its late terminal writes match nothing (they are fenced).
        Aborting the procrastinate job makes a running worker notice at once instead of at its
        next heartbeat, and cancels a job that is still waiting.
        """
        async with self.db.write() as session:
            cancelled = await service.cancel_and_refund(session, task_id, account_id, CANCELLED_MESSAGE, self.events)
            job_ids = await job_repo.live_job_ids(session, task_id)
        for job_id in job_ids:
            await self.app.job_manager.cancel_job_by_id_async(job_id, abort=True)
        return cancelled
