"""The backstop: finishes what a crash or a refused database write left unfinished, in any mode.

Two steps, shared by both deployments:

- ``recover_running``: RUNNING tasks nobody renders any more go back to QUEUED while attempts remain,
  else FAILED and refunded (``service.retry_or_fail``), and the stray video of the dead attempt is
  deleted. The distributed sweeper calls it for tasks whose heartbeat went silent; the embedded
  backstop for tasks of a previous server process and for any of its own that no render holds.
- ``TaskRunner.write_unwritten``: outcomes the database refused when a render ended (see
  ``worker.runner``) are written once it takes writes again.

``Backstop`` runs both every ``sweep_interval`` seconds beside the embedded dispatcher (and only the
second beside a distributed worker, whose orphans are the sweeper's). Every write is fenced by the
task's attempt, so a step that races a live render or another sweep changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from happyhorse.storage.base import ResultStore
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.models import Task, utcnow
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.worker.runner import TaskRunner

log = logging.getLogger("happyhorse.backstop")

# An own task no render holds is recovered only once its heartbeat is this old: a claim commits a
# moment before its render is registered, and that moment must not look like an orphan.
OWN_ORPHAN_GRACE_S = 5.0


async def discard_result(store: ResultStore | None, task_id: str, attempt: int) -> None:
    """A dead attempt may have stored its video without completing: leave no stray object. (The key is
    the one ``TaskRunner.finish`` writes; an upload after this is deleted by the runner itself when its
    fenced ``succeed`` matches nothing.)"""
    if store is None:
        return
    try:
        await asyncio.to_thread(store.delete, f"{task_id}-{attempt}.mp4")
    except Exception:
        log.warning("could not delete a stray result of task %s attempt %s", task_id, attempt, exc_info=True)


async def recover_running(
    db: Database,
    events: EventHub | None,
    store: ResultStore | None,
    reason: Callable[[Task], str | None],
    heartbeat_before: datetime | None = None,
) -> list[tuple[Task, str]]:
    """Retry or fail each RUNNING task (heartbeat older than ``heartbeat_before``) for which ``reason``
    gives a reason (None: leave it); returns each task acted on with "requeued", "failed" or "unchanged"."""
    async with db.read() as session:
        candidates = await task_repo.running(session, heartbeat_before=heartbeat_before)
    done = []
    for task in candidates:
        why = reason(task)
        if why is None:
            continue
        async with db.write() as session:
            outcome = await service.retry_or_fail(session, task, why, events)
        if outcome != "unchanged":
            await discard_result(store, task.id, task.attempt)
        done.append((task, outcome))
    return done


class Backstop:
    """The periodic pass beside a runner. ``rendering(task_id)`` says whether a live render of this
    process holds the task; with ``worker_id`` (embedded mode) orphaned RUNNING tasks are recovered too."""

    def __init__(
        self,
        db: Database,
        runner: TaskRunner,
        store: ResultStore,
        events: EventHub | None,
        interval: float,
        rendering: Callable[[str], bool] = lambda _task_id: False,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.runner = runner
        self.store = store
        self.events = events
        self.interval = interval
        self.rendering = rendering
        self.worker_id = worker_id
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run_forever(), name="happyhorse-backstop")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception as exc:  # the database is still refusing: the next pass retries
                log.warning("backstop pass failed (%s: %s); retrying in %.0fs", type(exc).__name__, exc, self.interval)

    async def sweep(self) -> dict[str, int]:
        """One pass; returns counts of what it did."""
        counts = {"written": await self.runner.write_unwritten(), "recovered": 0}
        if self.worker_id is not None:
            recovered = await recover_running(self.db, self.events, self.store, self._orphan_reason)
            counts["recovered"] = sum(outcome != "unchanged" for _, outcome in recovered)
        if any(counts.values()):
            log.info("backstop: %s", counts)
        return counts

    def _orphan_reason(self, task: Task) -> str | None:
        """Why a RUNNING task is an orphan of this server, or None while something still owns it."""
        if self.rendering(task.id) or task.id in self.runner.unwritten:
            return None
        if task.worker_id != self.worker_id:  # a previous server process on this database
            return "the server restarted while it was rendering"
        grace = utcnow() - timedelta(seconds=OWN_ORPHAN_GRACE_S)
        if task.heartbeat_at is not None and task.heartbeat_at > grace:
            return None
        return "its render ended without recording an outcome"
