"""The sweeper: puts right what a crash or a lost message left behind, so no task is stranded.

Every API node and every worker runs one; an advisory lock lets one sweep at a time across the
cluster (and every step is a fenced, conditional write anyway, so two sweeps could not double-act).
Each sweep, in order:

1. Stalled jobs — procrastinate jobs in ``doing`` whose worker stopped heartbeating for
   ``stall_timeout`` seconds (killed, frozen, partitioned). If the task is still RUNNING on that job's
   attempt, it goes back to QUEUED while attempts remain (``service.retry_or_fail``), else FAILED and
   refunded. The job is closed as failed and, for a retry, a fresh job is sent.
2. Silent tasks — RUNNING tasks whose own heartbeat (kept fresh by the worker every few seconds, see
   ``WorkerRuntime``) is older than twice the stall timeout: the backstop for a job row that vanished
   (``backstop.recover_running``, the step the embedded backstop shares).
3. Missing jobs — QUEUED tasks with no waiting or running job (the API died between commit and
   defer, or the defer failed): a job is sent. A short grace keeps this off tasks mid-submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import procrastinate
from procrastinate.jobs import Status

from happyhorse.config import Settings
from happyhorse.dispatch.backstop import discard_result, recover_running
from happyhorse.dispatch.procrastinate_app import RENDER_TASK, defer_render
from happyhorse.storage.base import ResultStore
from happyhorse.store import jobs as job_repo
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.models import Task, utcnow
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.tasks.status import TaskStatus

log = logging.getLogger("happyhorse.sweeper")

MISSING_JOB_GRACE_S = 5.0


def job_tag(job_id: int | None) -> str:
    """How a task's ``worker_id`` names the job that claimed it (ties an attempt to one job)."""
    return f"/job-{job_id}"


class Sweeper:
    def __init__(
        self,
        db: Database,
        app: procrastinate.App,
        settings: Settings,
        store: ResultStore | None = None,
        events: EventHub | None = None,
    ) -> None:
        self.db = db
        self.events = events or EventHub(notify=True)  # distributed mode: transitions NOTIFY
        self.app = app
        self.settings = settings
        self.store = store
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run_forever(), name="happyhorse-sweeper")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a database blip must not end the loop: the next sweep retries
                log.exception("sweep failed")
            await asyncio.sleep(self.settings.sweep_interval)

    async def sweep(self) -> dict[str, int]:
        """One pass (under the cluster-wide lock); returns counts of what it did."""
        async with self.db.write_engine.connect() as lock_conn, lock_conn.begin():
            if not await job_repo.try_sweep_lock(lock_conn):
                return {}
            counts = {
                "stalled": await self.recover_stalled_jobs(),
                "silent": await self.recover_silent_tasks(),
                "enqueued": await self.enqueue_missing(),
            }
        if any(counts.values()):
            log.info("sweep: %s", counts)
        return counts

    async def recover_stalled_jobs(self) -> int:
        stalled = list(
            await self.app.job_manager.get_stalled_jobs(
                task_name=RENDER_TASK, seconds_since_heartbeat=self.settings.stall_timeout
            )
        )
        for job in stalled:
            task_id = str(job.task_kwargs.get("task_id", ""))
            outcome, attempt = "unchanged", 0
            async with self.db.write() as session:
                task = await task_repo.get(session, task_id)
                if (
                    task is not None
                    and task.status == TaskStatus.RUNNING
                    and task.worker_id
                    and task.worker_id.endswith(job_tag(job.id))
                ):
                    outcome = await service.retry_or_fail(session, task, "its worker stopped responding", self.events)
                    attempt = task.attempt
            if outcome != "unchanged":
                await self._discard_result(task_id, attempt)
            assert job.id is not None
            try:
                await self.app.job_manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
            except Exception as exc:  # finished meanwhile (its worker came back): nothing to close
                log.info("stalled job %s: %s", job.id, exc)
            if outcome == "requeued":
                await defer_render(self.app, task_id, job.queue)
        return len(stalled)

    async def _discard_result(self, task_id: str, attempt: int) -> None:
        await discard_result(self.store, task_id, attempt)

    async def recover_silent_tasks(self) -> int:
        cutoff = utcnow() - timedelta(seconds=2 * self.settings.stall_timeout)

        def silent(_task: Task) -> str:
            return "its worker went silent"

        recovered = await recover_running(self.db, self.events, self.store, silent, heartbeat_before=cutoff)
        for task, outcome in recovered:
            if outcome == "requeued":
                async with self.db.read() as session:
                    queue = await job_repo.last_queue(session, task.id)
                await defer_render(self.app, task.id, queue or self.settings.queue)
        return sum(outcome != "unchanged" for _, outcome in recovered)

    async def enqueue_missing(self) -> int:
        cutoff = utcnow() - timedelta(seconds=MISSING_JOB_GRACE_S)
        async with self.db.read() as session:
            missing = await job_repo.queued_without_job(session, cutoff)
        sent = 0
        for task_id in missing:
            async with self.db.read() as session:
                queue = await job_repo.last_queue(session, task_id)
            if await defer_render(self.app, task_id, queue or self.settings.queue):
                log.warning("task %s had no job; sent one", task_id)
                sent += 1
        return sent
