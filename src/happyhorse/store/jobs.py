"""Distributed mode's queries: the task table read beside procrastinate's job table (PostgreSQL only).

The task table stays the source of truth; procrastinate's jobs are only the wake-up calls that bring
a task to a worker. These queries find where the two disagree (a QUEUED task with no job) and keep
a running task's heartbeat fresh so a dead worker's task can be told from a slow one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from happyhorse.store.models import Task, utcnow
from happyhorse.task_status import TaskStatus

# One cluster-wide lock id for the sweeper (any constant; "hhsweep" in ASCII).
SWEEP_LOCK_ID = 0x68687377656570

# A job still "live" for a task: waiting, or held by a worker (stalled ones are finished first).
_QUEUED_WITHOUT_JOB = text(f"""
    SELECT t.id FROM tasks t
     WHERE t.status = '{TaskStatus.QUEUED}' AND t.updated_at < :updated_before
       AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.queueing_lock = t.id AND j.status IN ('todo', 'doing'))
     ORDER BY t.created_at
     LIMIT :limit
""")

_LAST_QUEUE = text("""
    SELECT queue_name FROM procrastinate_jobs WHERE queueing_lock = :task_id ORDER BY id DESC LIMIT 1
""")

_LIVE_JOB_IDS = text("""
    SELECT id FROM procrastinate_jobs WHERE queueing_lock = :task_id AND status IN ('todo', 'doing')
""")


async def queued_without_job(session: AsyncSession, updated_before: datetime, limit: int = 200) -> list[str]:
    """QUEUED tasks, untouched since ``updated_before``, that no job will ever bring to a worker."""
    rows = await session.execute(_QUEUED_WITHOUT_JOB, {"updated_before": updated_before, "limit": limit})
    return [row[0] for row in rows]


async def last_queue(session: AsyncSession, task_id: str) -> str | None:
    """The queue the task's latest job went to (so a re-enqueue lands on the same worker pool)."""
    return (await session.execute(_LAST_QUEUE, {"task_id": task_id})).scalar_one_or_none()


async def live_job_ids(session: AsyncSession, task_id: str) -> list[int]:
    return [int(row[0]) for row in await session.execute(_LIVE_JOB_IDS, {"task_id": task_id})]


async def touch(session: AsyncSession, task_id: str, attempt: int) -> bool:
    """Refresh a running attempt's heartbeat; False when the attempt no longer owns the task."""
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.attempt == attempt, Task.status == TaskStatus.RUNNING)
        .values(heartbeat_at=utcnow())
    )
    return bool((await session.execute(stmt)).rowcount > 0)  # type: ignore[attr-defined]


async def try_sweep_lock(conn: AsyncConnection) -> bool:
    """Take the sweeper's lock for the transaction open on ``conn``, if no other node holds it.

    Transaction-scoped on purpose: it goes away with the transaction however that ends (even a
    dropped connection), so a failed sweep can never leave the cluster without a sweeper.
    """
    return bool((await conn.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": SWEEP_LOCK_ID})).scalar())
