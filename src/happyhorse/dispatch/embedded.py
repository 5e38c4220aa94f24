"""The embedded runner: the task table is the queue, engine processes live beside the API.

On start it recovers what a previous run left RUNNING (requeue while attempts remain, else fail and
refund), then claims QUEUED tasks oldest first whenever an engine process is free.

No fault wedges it. Every way out of a render gives its engine back (``_run``); the dispatch loop
survives any exception (logged, retried with backoff, the engine it held given back); and the
backstop (``dispatch.backstop``) writes the outcomes the database refused and recovers any RUNNING
task no render holds, once the database takes writes again. ``problem`` tells ``/healthz`` when
tasks wait and the loop has not moved for ``HAPPYHORSE_DISPATCH_STUCK_AFTER`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

from happyhorse.config import Settings
from happyhorse.dispatch.backstop import Backstop
from happyhorse.storage.base import ResultStore
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.tasks.events import install as install_events
from happyhorse.worker.engine_pool import EnginePool
from happyhorse.worker.engine_process import EngineProcess
from happyhorse.worker.runner import INTERNAL_ERROR_MESSAGE, TaskRunner

log = logging.getLogger("happyhorse.dispatch")

IDLE_POLL_S = 1.0  # also picks up tasks inserted by another process (e.g. a CLI)
RETRY_FIRST_S = 0.5  # the dispatch loop's backoff after an error (a database that refuses writes)
RETRY_MAX_S = 10.0


class EmbeddedDispatcher:
    def __init__(self, db: Database, settings: Settings, store: ResultStore) -> None:
        self.db = db
        self.settings = settings
        self.events = EventHub()  # in-process: the API's subscribers hear each transition after its commit
        self.runner = TaskRunner(db, settings, store, self.events)
        # unique per process (a container's pid repeats): a task claimed under another id is an orphan
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.engines = EnginePool(settings)
        self.wake = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.engine_of: dict[str, EngineProcess] = {}  # running task → the engine rendering it
        self.backstop = Backstop(
            db,
            self.runner,
            store,
            self.events,
            settings.sweep_interval,
            rendering=self.running.__contains__,
            worker_id=self.worker_id,
        )
        self.last_tick = time.monotonic()  # the loop's last sign of life (see ``problem``)
        self.last_error: str | None = None  # why the loop's last try failed, until one succeeds
        self._loop: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        install_events(self.events)
        await self.recover()
        # engines load in the background: the API answers at once, tasks queue until an engine is ready
        self._background.append(asyncio.create_task(self.engines.start()))
        self._loop = asyncio.create_task(self._dispatch_loop(), name="happyhorse-dispatch")
        self._background.append(self._loop)
        self.backstop.start()

    async def recover(self) -> None:
        """Tasks RUNNING in the table belong to a process that is gone: retry or fail them. A database
        that refuses writes now does not stop the server: the backstop's next pass does it."""
        try:
            await self.backstop.sweep()
        except Exception as exc:
            log.warning(
                "could not recover interrupted tasks yet (%s: %s); the backstop retries", type(exc).__name__, exc
            )

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
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._dispatch_one()
                delay = RETRY_FIRST_S
            except Exception as exc:  # most often the database refusing writes: wait, then try again
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning(
                    "dispatch failed (%s); retrying in %.1fs",
                    self.last_error,
                    delay,
                    exc_info=not _is_database_error(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _dispatch_one(self) -> None:
        """Wait for a free engine and a queued task, and start rendering it there."""
        engine = await self._free_engine()
        try:
            claim = await self._next_claim()
        except BaseException:
            self.engines.release(engine)  # the loop retries: the engine must not leave with this try
            raise
        self.running[claim.task_id] = asyncio.create_task(self._run(claim.task_id, claim.attempt, engine))

    async def _free_engine(self) -> EngineProcess:
        while True:
            try:
                return await asyncio.wait_for(self.engines.acquire(), IDLE_POLL_S)
            except TimeoutError:
                if self._engines_accounted_for():  # all busy rendering, or (re)loading: waiting is right
                    self._tick()

    def _engines_accounted_for(self) -> bool:
        loading = sum(not engine.ready for engine in self.engines.engines)
        return len(self.running) + loading >= len(self.engines)

    async def _next_claim(self) -> service.Claim:
        while True:
            claim = await self._claim_next()
            self._tick()
            if claim is not None:
                return claim
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), IDLE_POLL_S)

    def _tick(self) -> None:
        self.last_tick = time.monotonic()
        self.last_error = None

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
        outcome = "error"  # the runner raises only before the engine saw the job (see TaskRunner.run)
        self.engine_of[task_id] = engine
        try:
            outcome = await self.runner.run(task_id, attempt, engine)
        except Exception:
            log.exception("task %s: unexpected error", task_id)
            # never raises for a database error: a refused write waits in runner.unwritten for the backstop
            await self.runner.fail(task_id, attempt, INTERNAL_ERROR_MESSAGE)
        finally:
            self.running.pop(task_id, None)
            self.engine_of.pop(task_id, None)
            try:
                if outcome == "crashed":
                    await engine.stop()  # a half-dead process is replaced, not reused
            finally:
                self.engines.release(engine)  # always: a slot is never left held

    async def problem(self) -> str | None:
        """Why the dispatcher is stuck (for ``/healthz``), or None: tasks are queued and the loop has not
        moved for ``dispatch_stuck_after`` seconds, or the loop has ended."""
        if self._loop is not None and self._loop.done():
            return "the dispatch loop has stopped"
        still = time.monotonic() - self.last_tick
        if still < self.settings.dispatch_stuck_after:
            return None
        async with self.db.read() as session:
            if not await task_repo.queued_ids(session, limit=1):
                return None
        why = self.last_error or "no engine is free and none is rendering"
        return f"tasks are queued and the dispatcher has not moved for {still:.0f} s ({why})"

    async def stop(self) -> None:
        await self.backstop.stop()
        for task in [*self._background, *self.running.values()]:
            task.cancel()
        for task in [*self._background, *self.running.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.engines.stop()


def _is_database_error(exc: BaseException) -> bool:
    """A refused write is expected in an outage and logged in one line; anything else with its traceback."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError | OSError)
