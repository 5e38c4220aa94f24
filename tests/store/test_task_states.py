"""The task state machine on a real (SQLite) database: atomic debit, fenced writes, refund once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from happyhorse.contract import parse_generate
from happyhorse.errors import InsufficientCredits
from happyhorse.store import accounts
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.migrate import upgrade
from happyhorse.tasks import service

REQUEST = {"model": "happyhorse-1.0/video", "prompt": "a fox", "duration": 3, "sound": False}  # 120 credits


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'hh.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()


async def new_account(db: Database, credits: int) -> str:
    async with db.write() as session:
        return (await accounts.create_account(session, "acct", credits)).id


async def submit(db: Database, account_id: str) -> str:
    async with db.write() as session:
        task = await service.submit(session, account_id, None, parse_generate(dict(REQUEST)), max_attempts=2)
        return task.id


async def balance(db: Database, account_id: str) -> int:
    async with db.read() as session:
        return await accounts.balance(session, account_id) or 0


async def test_concurrent_submits_never_overspend(db: Database) -> None:
    account_id = await new_account(db, 1000)  # covers 8 tasks of 120

    async def attempt() -> bool:
        try:
            await submit(db, account_id)
            return True
        except InsufficientCredits:
            return False

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert results.count(True) == 8
    assert await balance(db, account_id) == 1000 - 8 * 120
    async with db.read() as session:
        assert await accounts.ledger_sum(session, account_id) == await balance(db, account_id)


async def test_refund_happens_exactly_once(db: Database) -> None:
    account_id = await new_account(db, 500)
    task_id = await submit(db, account_id)
    async with db.write() as session:
        assert await service.fail_and_refund(session, task_id, "input unusable")
    async with db.write() as session:
        assert not await service.fail_and_refund(session, task_id, "again")
    async with db.write() as session:  # even a direct second refund is refused by the ledger's key
        assert not await accounts.refund_task(session, account_id, task_id, 120)
    assert await balance(db, account_id) == 500


async def test_terminal_writes_are_fenced_by_attempt(db: Database) -> None:
    account_id = await new_account(db, 500)
    task_id = await submit(db, account_id)
    async with db.write() as session:
        first = await task_repo.claim(session, task_id, "worker-a")
    assert first is not None and first.attempt == 1
    async with db.write() as session:  # worker-a is presumed dead: its task goes back to the queue
        assert await task_repo.requeue(session, task_id, first.attempt)
        second = await task_repo.claim(session, task_id, "worker-b")
    assert second is not None and second.attempt == 2
    async with db.write() as session:  # the late finish of attempt 1 changes nothing
        assert not await task_repo.complete(session, task_id, first.attempt, {"result_key": "late.mp4"})
        assert not await service.fail_and_refund(session, task_id, "late failure", first.attempt)
    async with db.write() as session:
        assert await task_repo.complete(session, task_id, second.attempt, {"result_key": "ok.mp4"})
    async with db.read() as session:
        task = await task_repo.get(session, task_id)
    assert task is not None and (task.status, task.result_key) == ("SUCCESS", "ok.mp4")
    assert await balance(db, account_id) == 380


async def test_spent_attempts_fail_and_refund(db: Database) -> None:
    account_id = await new_account(db, 500)
    task_id = await submit(db, account_id)
    for expected in ("requeued", "failed"):
        async with db.write() as session:
            claim = await task_repo.claim(session, task_id, "w")
            assert claim is not None
            task = await task_repo.get(session, task_id)
            assert task is not None
            assert await service.retry_or_fail(session, task, "worker lost") == expected
    assert await balance(db, account_id) == 500
