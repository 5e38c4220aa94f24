"""One page of an account's tasks, newest first, by keyset: the cursor names the last task shown.

Keyset paging (``(created_at, id) < cursor``) rather than offsets, so following the cursors while new
tasks arrive gives no duplicates and skips nothing: a new task is newer than every cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import Task


class BadCursor(ValueError):
    """The cursor was not made by ``encode_cursor``."""


@dataclass(frozen=True)
class Position:
    created_at: datetime
    task_id: str


def encode_cursor(task: Task) -> str:
    raw = f"{task.created_at.astimezone(UTC).isoformat()}|{task.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, task_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("cursor is not one this server returned") from None
    if created_at.tzinfo is None or not task_id:
        raise BadCursor("cursor is not one this server returned")
    return Position(created_at, task_id)


async def page(
    session: AsyncSession, account_id: str, limit: int, after: Position | None, statuses: Sequence[str] | None
) -> tuple[list[Task], bool]:
    """Up to ``limit`` tasks older than ``after``; the flag says whether more follow."""
    stmt = select(Task).where(Task.account_id == account_id)
    if statuses:
        stmt = stmt.where(Task.status.in_(list(statuses)))
    if after is not None:
        stmt = stmt.where(
            or_(Task.created_at < after.created_at, and_(Task.created_at == after.created_at, Task.id < after.task_id))
        )
    stmt = stmt.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    return rows[:limit], len(rows) > limit


async def page_ascending(
    session: AsyncSession, account_id: str, limit: int, after: Position | None
) -> tuple[list[Task], bool]:
    """Oldest first: up to ``limit`` tasks newer than ``after``; the flag says whether more follow."""
    stmt = select(Task).where(Task.account_id == account_id)
    if after is not None:
        stmt = stmt.where(
            or_(Task.created_at > after.created_at, and_(Task.created_at == after.created_at, Task.id > after.task_id))
        )
    stmt = stmt.order_by(Task.created_at.asc(), Task.id.asc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    return rows[:limit], len(rows) > limit


async def numbered_page(
    session: AsyncSession,
    account_id: str,
    page_no: int,
    page_size: int,
    statuses: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[Task], int]:
    """Page ``page_no`` (from 1) of ``page_size`` tasks, newest first, and how many match in all.

    Offsets, for DashScope's ``GET /api/v1/tasks`` (``page_no``/``page_size``), which has no cursor."""
    conditions = [Task.account_id == account_id]
    if statuses:
        conditions.append(Task.status.in_(list(statuses)))
    if since is not None:
        conditions.append(Task.created_at >= since)
    if until is not None:
        conditions.append(Task.created_at <= until)
    total = (await session.execute(select(func.count()).select_from(Task).where(*conditions))).scalar_one()
    stmt = (
        select(Task)
        .where(*conditions)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .offset((page_no - 1) * page_size)
        .limit(page_size)
    )
    return list((await session.execute(stmt)).scalars()), int(total)
