"""Result retention: finished videos are deleted ``HAPPYHORSE_RESULT_RETENTION`` seconds after their
task finished (or at once through ``DELETE /api/tasks/{id}``); the task itself stays, ``SUCCESS``,
with ``response: null`` and ``expired: true``. Uploaded input images go under the same setting once
no queued or running task refers to them.

The database forgets the result key first, in a conditional update, and only the caller that won
it deletes the file or S3 object: two API nodes sweeping at once never fight, and status never
hands out a URL to a file that is already gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from happyhorse.errors import TaskNotFinished, TaskNotFound
from happyhorse.storage.base import ResultStore
from happyhorse.storage.uploads import UploadStore
from happyhorse.store import results
from happyhorse.store import tasks as task_repo
from happyhorse.store import uploads as upload_rows
from happyhorse.store.db import Database
from happyhorse.store.models import Task, utcnow
from happyhorse.tasks.status import TERMINAL

log = logging.getLogger("happyhorse.retention")

FINISHED = TERMINAL


async def delete_result(db: Database, store: ResultStore, account_id: str, task_id: str) -> Task:
    """Delete a finished task's video now; returns the task as it is afterwards.

    Raises TaskNotFound (unknown, or another account's) and TaskNotFinished (still in progress).
    Deleting again, or a task that has no video, changes nothing.
    """
    async with db.write() as session:
        task = await task_repo.get_for_account(session, task_id, account_id)
        if task is None:
            raise TaskNotFound(f"no task {task_id!r} for this API key's account")
        if task.status not in FINISHED:
            raise TaskNotFinished(f"task {task_id} is still in progress; cancel it first or wait for it to end")
        key = task.result_key
        won = key is not None and await results.forget_result(session, task_id, key)
    if won and key is not None:
        await asyncio.to_thread(store.delete, key)
        log.info("deleted the result of task %s on request", task_id)
    async with db.read() as session:
        fresh = await task_repo.get(session, task_id)
    assert fresh is not None
    return fresh


async def sweep_expired(db: Database, store: ResultStore, retention_s: int) -> int:
    """Delete every video older than the retention; returns how many went."""
    if retention_s <= 0:
        return 0
    deleted = 0
    while True:
        async with db.read() as session:
            due = await results.due_for_deletion(session, utcnow() - timedelta(seconds=retention_s))
        if not due:
            return deleted
        for task_id, key in due:
            async with db.write() as session:
                won = await results.forget_result(session, task_id, key)
            if won:
                await asyncio.to_thread(store.delete, key)
                deleted += 1
        if len(due) < 200:
            return deleted


async def sweep_uploads(db: Database, uploads: UploadStore, retention_s: int) -> int:
    """Delete uploaded images older than the retention that no queued or running task refers to."""
    if retention_s <= 0:
        return 0
    old = await asyncio.to_thread(uploads.older_than, time.time() - retention_s)
    if not old:
        return 0
    async with db.read() as session:
        needed = json.dumps(await results.active_specs(session))  # their image URLs name the files
    gone: list[str] = []
    for name in old:
        if name not in needed:
            await asyncio.to_thread(uploads.delete, name)
            gone.append(name)
    if gone:
        async with db.write() as session:
            await upload_rows.forget(session, gone)  # the account's upload quota frees what went
    return len(gone)


class RetentionSweeper:
    """Runs the sweeps every ``interval`` seconds for as long as the server runs."""

    def __init__(
        self,
        db: Database,
        store: ResultStore,
        retention_s: int,
        interval_s: float,
        extra_sweeps: Sequence[Callable[[], Awaitable[int]]] = (),
    ) -> None:
        self.db, self.store = db, store
        self.retention_s, self.interval_s = retention_s, interval_s
        self.extra_sweeps = extra_sweeps  # more ``async () -> int`` sweeps on the same clock (uploads)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.retention_s > 0:
            self._task = asyncio.create_task(self._run(), name="retention-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                gone = await sweep_expired(self.db, self.store, self.retention_s)
                for sweep in self.extra_sweeps:
                    gone += await sweep()
                if gone:
                    log.info("retention: deleted %d expired files", gone)
            except Exception:  # a failing sweep is retried next round; it must never stop the server
                log.exception("retention sweep failed")
            await asyncio.sleep(self.interval_s)
