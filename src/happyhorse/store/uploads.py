"""The uploads table: the per-account quota on stored input images. All its SQL lives here.

``reserve`` is the only way a row appears, and it checks the quota in the same transaction that
adds the row, under the account's lock (PostgreSQL; SQLite's writers are serial anyway), so any
number of uploads at once never store more than the quota between them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.admission import lock_account
from happyhorse.store.models import Upload, utcnow


async def stored_bytes(session: AsyncSession, account_id: str) -> int:
    stmt = select(func.coalesce(func.sum(Upload.bytes), 0)).where(Upload.account_id == account_id)
    return int((await session.execute(stmt)).scalar_one())


async def reserve(session: AsyncSession, account_id: str, name: str, size: int, quota: int) -> int | None:
    """Record ``name`` (``size`` bytes) for the account if it fits under ``quota`` (0: no quota).

    Returns None once recorded, or the bytes the account already stores when it does not fit.
    """
    await lock_account(session, account_id)
    used = await stored_bytes(session, account_id)
    if quota > 0 and used + size > quota:
        return used
    session.add(Upload(name=name, account_id=account_id, bytes=size, created_at=utcnow()))
    await session.flush()
    return None


async def forget(session: AsyncSession, names: Iterable[str]) -> None:
    """Drop the rows of files that are gone (deleted by retention, or never written)."""
    batch = list(names)
    if batch:
        await session.execute(delete(Upload).where(Upload.name.in_(batch)))
