"""The task table's queries. Every state change is a conditional UPDATE, so races resolve in SQL.

Terminal writes carry the attempt number they belong to: a worker that was presumed dead and
finishes late matches no row and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import Task, utcnow
from happyhorse.task_status import ACTIVE, TaskStatus


@dataclass
class Claim:
    task_id: str
    attempt: int


async def insert(session: AsyncSession, task: Task) -> None:
    session.add(task)
    await session.flush()


async def get(session: AsyncSession, task_id: str) -> Task | None:
    return await session.get(Task, task_id)


async def get_for_account(session: AsyncSession, task_id: str, account_id: str) -> Task | None:
    stmt = select(Task).where(Task.id == task_id, Task.account_id == account_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_for_account(
    session: AsyncSession, account_id: str | None, limit: int = 100, offset: int = 0
) -> list[Task]:
    stmt = select(Task).order_by(Task.created_at.desc()).limit(limit).offset(offset)
    if account_id:
        stmt = stmt.where(Task.account_id == account_id)
    return list((await session.execute(stmt)).scalars())


async def queued_ids(session: AsyncSession, limit: int = 100) -> list[str]:
    stmt = select(Task.id).where(Task.status == TaskStatus.QUEUED).order_by(Task.created_at).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def running(session: AsyncSession, heartbeat_before: datetime | None = None) -> list[Task]:
    stmt = select(Task).where(Task.status == TaskStatus.RUNNING)
    if heartbeat_before is not None:
        stmt = stmt.where(Task.heartbeat_at < heartbeat_before)
    return list((await session.execute(stmt)).scalars())


async def claim(session: AsyncSession, task_id: str, worker_id: str) -> Claim | None:
    """QUEUED → RUNNING with a new attempt number, or None if someone else has it (or it ended)."""
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.QUEUED)
        .values(
            status=TaskStatus.RUNNING,
            attempt=Task.attempt + 1,
            worker_id=worker_id,
            started_at=now,
            heartbeat_at=now,
            updated_at=now,
            progress=0,
        )
        .returning(Task.attempt)
    )
    attempt = (await session.execute(stmt)).scalar_one_or_none()
    return Claim(task_id, int(attempt)) if attempt is not None else None


async def set_progress(session: AsyncSession, task_id: str, attempt: int, progress: int) -> bool:
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.attempt == attempt, Task.status == TaskStatus.RUNNING)
        .values(progress=progress, heartbeat_at=now, updated_at=now)
    )
    return bool((await session.execute(stmt)).rowcount > 0)  # type: ignore[attr-defined]


async def complete(session: AsyncSession, task_id: str, attempt: int, result: dict[str, Any]) -> bool:
    """RUNNING (this attempt) → SUCCESS with the result's fields."""
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.attempt == attempt, Task.status == TaskStatus.RUNNING)
        .values(status=TaskStatus.SUCCESS, progress=100, completed_at=now, updated_at=now, error_message=None, **result)
    )
    return bool((await session.execute(stmt)).rowcount > 0)  # type: ignore[attr-defined]


async def fail(session: AsyncSession, task_id: str, message: str, attempt: int | None = None) -> Task | None:
    """QUEUED/RUNNING → FAILED. With ``attempt``, only if that attempt still owns the task.

    Returns the task as it was failed (for the refund), or None when nothing changed.
    """
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.status.in_(ACTIVE))
        .values(status=TaskStatus.FAILED, error_message=message, completed_at=now, updated_at=now)
        .returning(Task)
    )
    if attempt is not None:
        stmt = stmt.where(Task.attempt == attempt)
    return (await session.execute(stmt)).scalar_one_or_none()


async def cancel(session: AsyncSession, task_id: str, message: str, account_id: str | None = None) -> Task | None:
    """QUEUED/RUNNING → CANCELLED (any attempt). Returns the task as it was cancelled, or None when it had ended."""
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.status.in_(ACTIVE))
        .values(status=TaskStatus.CANCELLED, error_message=message, completed_at=now, updated_at=now)
        .returning(Task)
    )
    if account_id is not None:
        stmt = stmt.where(Task.account_id == account_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def requeue(session: AsyncSession, task_id: str, attempt: int) -> bool:
    """RUNNING (this attempt) → QUEUED, for a retry after a lost worker."""
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.attempt == attempt, Task.status == TaskStatus.RUNNING)
        .values(status=TaskStatus.QUEUED, worker_id=None, progress=0, updated_at=utcnow())
    )
    return bool((await session.execute(stmt)).rowcount > 0)  # type: ignore[attr-defined]
