"""Deployment-wide figures for ``GET /metrics``, read from the database so every node agrees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import LedgerEntry, Task
from happyhorse.task_status import ACTIVE, TaskStatus


@dataclass(frozen=True)
class Figures:
    finished: list[tuple[str, str, str, int]]  # (mode, type, stored status, count) of ended tasks
    queued: int
    running: int
    debited: int
    refunded: int


async def figures(session: AsyncSession) -> Figures:
    by_status = (
        await session.execute(
            select(Task.mode, Task.type, Task.status, func.count()).group_by(Task.mode, Task.type, Task.status)
        )
    ).all()
    ledger = dict(
        (
            await session.execute(
                select(LedgerEntry.kind, func.coalesce(func.sum(LedgerEntry.amount), 0))
                .where(LedgerEntry.kind.in_(("debit", "refund")))
                .group_by(LedgerEntry.kind)
            )
        ).all()
    )
    counts = [(str(m), str(t), str(s), int(n)) for m, t, s, n in by_status]
    return Figures(
        finished=[row for row in counts if row[2] not in ACTIVE],
        queued=sum(n for _, _, s, n in counts if s == TaskStatus.QUEUED),
        running=sum(n for _, _, s, n in counts if s == TaskStatus.RUNNING),
        debited=-int(ledger.get("debit", 0)),
        refunded=int(ledger.get("refund", 0)),
    )
