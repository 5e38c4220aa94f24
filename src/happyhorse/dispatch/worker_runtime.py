"""What a procrastinate render job does on a worker: claim the task, render it, keep its heartbeat.

The event loop only waits: the engine renders in its own process, the pipe is read in a thread and
uploads run in a thread, so procrastinate's worker heartbeat and our task heartbeat keep flowing
through a render of any length.

The attempt the claim returns fences every write. A keepalive refreshes the task's heartbeat every
``stall_timeout / 4`` seconds; when it finds the attempt no longer owns the task (cancelled, or
handed to another worker after a stall) it stops the render, since nothing it produces would count.

An outcome the database refused when a render ended (PostgreSQL restarting) is written by this
worker's backstop once the database is back (``dispatch.backstop``); the job itself ends at once and
its engine takes the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import procrastinate
from procrastinate.job_context import AbortReason, JobContext

from happyhorse.config import Settings
from happyhorse.dispatch.backstop import Backstop
from happyhorse.dispatch.distributed import CANCELLED_MESSAGE
from happyhorse.dispatch.procrastinate_app import defer_render
from happyhorse.dispatch.sweeper import job_tag
from happyhorse.storage.base import ResultStore
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.tasks.events import install as install_events
from happyhorse.worker.engine_pool import EnginePool
from happyhorse.worker.engine_process import EngineProcess
from happyhorse.worker.runner import INTERNAL_ERROR_MESSAGE, TaskRunner

log = logging.getLogger("happyhorse.worker")


INTERRUPT_GRACE_S = 30.0  # how long one denoising step may take before the engine is stopped instead


def heartbeat_interval(settings: Settings) -> float:
    """Four heartbeats per stall timeout: one late beat never looks like a dead worker."""
    return max(0.5, settings.stall_timeout / 4)


class WorkerRuntime:
    def __init__(self, db: Database, settings: Settings, store: ResultStore, app: procrastinate.App) -> None:
        self.db = db
        self.settings = settings
        self.app = app
        self.events = EventHub(notify=True)  # a worker only NOTIFYs; the API nodes listen
        self.runner = TaskRunner(db, settings, store, self.events)
        self.pool = EnginePool(settings)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.backstop = Backstop(db, self.runner, store, self.events, settings.sweep_interval)

    async def start(self) -> None:
        install_events(self.events)
        await self.pool.start()
        self.backstop.start()

    async def stop(self) -> None:
        await self.backstop.stop()
        await self.runner.write_unwritten()  # a last try: what is still refused is the sweeper's to retry
        await self.pool.stop()

    async def render(self, task_id: str, context: JobContext) -> str:
        """Run one job to its end; returns the outcome in a word (kept in procrastinate's log)."""
        engine = await self.pool.acquire()
        try:
            return await self._render_on(engine, task_id, context)
        finally:
            self.pool.release(engine)

    async def _render_on(self, engine: EngineProcess, task_id: str, context: JobContext) -> str:
        async with self.db.write() as session:
            claim = await service.start(session, task_id, f"{self.name}{job_tag(context.job.id)}", self.events)
        if claim is None:  # a duplicate job, or the task ended or was taken meanwhile
            return "skipped"
        attempt = claim.attempt
        log.info("task %s: attempt %s on %s", task_id, attempt, engine.name)
        run = asyncio.create_task(self.runner.run(task_id, attempt, engine))
        lost = asyncio.Event()
        keepalive = asyncio.create_task(self._keepalive(task_id, attempt, engine, lost))
        try:
            return await asyncio.shield(run)  # a job abort interrupts the engine below, not the thread
        except asyncio.CancelledError:
            await self._stop_render(engine, task_id, run)
            current = asyncio.current_task()
            if lost.is_set() and current is not None and not current.cancelling():
                log.warning("task %s: attempt %s no longer owns the task; render stopped", task_id, attempt)
                return "lost"
            await self._abandon(task_id, attempt, context)
            raise
        except Exception:
            log.exception("task %s: unexpected error", task_id)
            return await self.runner.fail(task_id, attempt, INTERNAL_ERROR_MESSAGE)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _stop_render(self, engine: EngineProcess, task_id: str, run: asyncio.Task[str]) -> None:
        """Stop a render mid-way: at its next step if the engine hears the interrupt (the process keeps
        serving), else by stopping the process (the pool restarts it)."""
        if engine.interrupt(task_id):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(run), INTERRUPT_GRACE_S)
        if not run.done():
            await engine.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run

    async def _keepalive(self, task_id: str, attempt: int, engine: EngineProcess, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(heartbeat_interval(self.settings))
            try:
                async with self.db.write() as session:
                    owned = await service.heartbeat(session, task_id, attempt)
            except Exception:  # a blip: the next beat retries; a long outage is a stall like any other
                log.warning("task %s: heartbeat write failed", task_id, exc_info=True)
                continue
            if not owned:  # cancelled, or handed to another worker: stop at the next step
                log.warning("task %s: attempt %s no longer owns the task; stopping its render", task_id, attempt)
                lost.set()
                engine.interrupt(task_id)
                return

    async def _abandon(self, task_id: str, attempt: int, context: JobContext) -> None:
        """The job was aborted: by a cancel (end the task), or by the worker shutting down (retry it)."""
        if context.abort_reason() == AbortReason.USER_REQUEST:
            async with self.db.write() as session:
                # usually a no-op: the API's cancel ended the task before it aborted the job
                await service.cancel_and_refund(session, task_id, message=CANCELLED_MESSAGE, events=self.events)
            return
        async with self.db.write() as session:
            task = await task_repo.get(session, task_id)
            outcome = "unchanged"
            if task is not None and task.attempt == attempt:
                outcome = await service.retry_or_fail(session, task, "its worker shut down", self.events)
        if outcome == "requeued":
            await defer_render(self.app, task_id, context.job.queue)
