"""The ``Idempotency-Key`` table: which task a client's key made, and from which body."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import IdempotencyKey, utcnow


async def find(session: AsyncSession, account_id: str, key: str) -> IdempotencyKey | None:
    return await session.get(IdempotencyKey, (account_id, key))


async def forget(session: AsyncSession, account_id: str, key: str) -> None:
    await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
    )


async def remember(session: AsyncSession, account_id: str, key: str, fingerprint: str, task_id: str) -> None:
    """Record the key; a concurrent twin's insert fails here on the primary key (IntegrityError)."""
    session.add(
        IdempotencyKey(account_id=account_id, key=key, fingerprint=fingerprint, task_id=task_id, created_at=utcnow())
    )
    await session.flush()


async def purge_older_than(session: AsyncSession, moment: datetime) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < moment))
    return int(getattr(result, "rowcount", 0) or 0)
