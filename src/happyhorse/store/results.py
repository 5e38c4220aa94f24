"""Queries for result retention: which videos are due for deletion, and recording that one is gone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import Task, utcnow
from happyhorse.task_status import ACTIVE


async def due_for_deletion(session: AsyncSession, finished_before: datetime, limit: int = 200) -> list[tuple[str, str]]:
    """(task id, result key) of kept videos whose task finished before the moment, oldest first."""
    stmt = (
        select(Task.id, Task.result_key)
        .where(Task.result_key.is_not(None), Task.completed_at < finished_before)
        .order_by(Task.completed_at)
        .limit(limit)
    )
    return [(task_id, key) for task_id, key in (await session.execute(stmt)).all() if key is not None]


async def forget_result(session: AsyncSession, task_id: str, result_key: str) -> bool:
    """Drop the task's result key, if it still is this one: the caller that wins deletes the file."""
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.result_key == result_key)
        .values(result_key=None, result_deleted_at=utcnow())
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def active_specs(session: AsyncSession) -> list[dict]:  # type: ignore[type-arg]
    """The specs of queued and running tasks (what uploads they still need)."""
    stmt = select(Task.spec).where(Task.status.in_(ACTIVE))
    return list((await session.execute(stmt)).scalars())
