"""The embedded runner: the task table is the queue, engine processes live beside the API.

On start it recovers what a previous run left RUNNING (requeue while attempts remain, else fail and
refund), then claims QUEUED tasks oldest first whenever an engine process is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from happyhorse.config import Settings
from happyhorse.storage.base import ResultStore
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.tasks.events import install as install_events
from happyhorse.worker.engine_pool import EnginePool
from happyhorse.worker.engine_process import EngineProcess
from happyhorse.worker.runner import TaskRunner

log = logging.getLogger("happyhorse.dispatch")

IDLE_POLL_S = 1.0  # also picks up tasks inserted by another process (e.g. a CLI)


class EmbeddedDispatcher:
    def __init__(self, db: Database, settings: Settings, store: ResultStore) -> None:
        self.db = db
        self.settings = settings
        self.events = EventHub()  # in-process: the API's subscribers hear each transition after its commit
        self.runner = TaskRunner(db, settings, store, self.events)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.engines = EnginePool(settings)
        self.wake = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.engine_of: dict[str, EngineProcess] = {}  # running task → the engine rendering it
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        install_events(self.events)
        await self.recover()
        # engines load in the background: the API answers at once, tasks queue until an engine is ready
        self._background.append(asyncio.create_task(self.engines.start()))
        self._background.append(asyncio.create_task(self._dispatch_loop()))

    async def recover(self) -> None:
        """Tasks RUNNING in the table belong to a process that is gone: retry or fail them."""
        async with self.db.write() as session:
            for task in await task_repo.running(session):
                await service.retry_or_fail(session, task, "the server restarted while it was rendering", self.events)

    async def enqueue(self, task_id: str) -> None:
        self.wake.set()

    async def cancel(self, task_id: str, account_id: str | None = None) -> bool:
        """End the task CANCELLED and refunded (``service.cancel_and_refund``); False if it had ended.

        A render in progress is interrupted at its next progress step (the engine process keeps
        serving); should it finish first, its fenced SUCCESS write matches nothing and the runner
        deletes its result. ``_run`` releases the engine slot as for any other outcome.
        """
        async with self.db.write() as session:
            cancelled = await service.cancel_and_refund(session, task_id, account_id, events=self.events)
        engine = self.engine_of.get(task_id)
        if cancelled and engine is not None:
            engine.interrupt(task_id)
        return cancelled

    async def _dispatch_loop(self) -> None:
        while True:
            engine = await self.engines.acquire()
            claim = None
            while claim is None:
                claim = await self._claim_next()
                if claim is None:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), IDLE_POLL_S)
            run = asyncio.create_task(self._run(claim.task_id, claim.attempt, engine))
            self.running[claim.task_id] = run

    async def _claim_next(self) -> service.Claim | None:
        async with self.db.read() as session:
            candidates = await task_repo.queued_ids(session, limit=5)
        for task_id in candidates:
            async with self.db.write() as session:
                claim = await service.start(session, task_id, self.worker_id, self.events)
            if claim is not None:
                return claim
        return None

    async def _run(self, task_id: str, attempt: int, engine: EngineProcess) -> None:
        outcome = "crashed"  # unless the run says otherwise: the engine may still hold the job
        self.engine_of[task_id] = engine
        try:
            outcome = await self.runner.run(task_id, attempt, engine)
        except Exception:
            log.exception("task %s: unexpected error", task_id)
            await self.runner.fail(task_id, attempt, "internal error while rendering this task")
        finally:
            self.running.pop(task_id, None)
            self.engine_of.pop(task_id, None)
            try:
                if outcome == "crashed":
                    await engine.stop()  # a half-dead process is replaced, not reused
            finally:
                self.engines.release(engine)  # always: a slot is never left held

    async def stop(self) -> None:
        for task in [*self._background, *self.running.values()]:
            task.cancel()
        for task in [*self._background, *self.running.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.engines.stop()
