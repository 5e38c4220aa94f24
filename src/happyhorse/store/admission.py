"""Queries the generate route runs before admitting a task: the account's in-flight count, under a lock."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import Account, Task
from happyhorse.task_status import ACTIVE

IN_FLIGHT = tuple(ACTIVE)


async def lock_account(session: AsyncSession, account_id: str) -> None:
    """Serialise one account's submits (a PostgreSQL row lock; SQLite's writers are serial already)."""
    await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())


async def in_flight_count(session: AsyncSession, account_id: str) -> int:
    stmt = select(func.count()).select_from(Task).where(Task.account_id == account_id, Task.status.in_(IN_FLIGHT))
    return int((await session.execute(stmt)).scalar_one())
