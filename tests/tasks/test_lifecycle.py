"""Every transition lives in tasks.service and emits one event, after its transaction commits.

Real databases: SQLite through the project's migrations, and PostgreSQL (LISTEN/NOTIFY) for the
cross-node seam.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import services
from happyhorse.contract import parse_generate
from happyhorse.store import accounts
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.migrate import upgrade
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub, PgListener, TaskEvent
from happyhorse.tasks.status import TaskStatus, wire_status

REQUEST = {"model": "happyhorse-1.0/video", "prompt": "a fox", "duration": 3, "sound": False}  # 120 credits
RESULT = {"result_key": "k.mp4", "width": 16, "height": 16, "result_duration": 3.0, "has_audio": False}


class Recorder:
    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self.arrived = asyncio.Event()

    async def __call__(self, event: TaskEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[TaskEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.events

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hh.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()


async def new_account(db: Database, credits: int) -> str:
    async with db.write() as session:
        return (await accounts.create_account(session, "acct", credits)).id


async def submit(db: Database, account_id: str, hub: EventHub) -> str:
    async with db.write() as session:
        task = await service.submit(session, account_id, None, parse_generate(dict(REQUEST)), 2, events=hub)
        return task.id


async def balance(db: Database, account_id: str) -> int:
    async with db.read() as session:
        return await accounts.balance(session, account_id) or 0


def test_wire_status_is_one_mapping() -> None:
    assert [wire_status(s) for s in TaskStatus] == ["IN_PROGRESS", "IN_PROGRESS", "SUCCESS", "FAILED", "FAILED"]


async def test_each_transition_emits_one_event_after_commit(db: Database) -> None:
    hub, seen = EventHub(), Recorder()
    hub.subscribe(seen)
    account_id = await new_account(db, 1000)

    async with db.write() as session:
        task = await service.submit(session, account_id, None, parse_generate(dict(REQUEST)), 2, events=hub)
        await asyncio.sleep(0.05)
        assert seen.events == []  # not inside the transaction
    task_id = task.id
    assert (await seen.wait_for(1))[0].kind == "accepted"

    async with db.write() as session:
        claim = await service.start(session, task_id, "w", events=hub)
    assert claim is not None
    async with db.write() as session:
        assert await service.progress(session, task_id, account_id, claim.attempt, 40, events=hub)
    async with db.write() as session:
        stored = await task_repo.get(session, task_id)
        assert stored is not None
        assert await service.retry_or_fail(session, stored, "lost", events=hub) == "requeued"
    async with db.write() as session:
        claim = await service.start(session, task_id, "w", events=hub)
    assert claim is not None and claim.attempt == 2
    async with db.write() as session:
        assert await service.succeed(session, task_id, account_id, 2, RESULT, events=hub)
    events = await seen.wait_for(6)
    assert seen.kinds() == ["accepted", "started", "progress", "requeued", "started", "succeeded"]
    assert [e.status for e in events] == ["QUEUED", "RUNNING", "RUNNING", "QUEUED", "RUNNING", "SUCCESS"]
    assert events[2].progress == 40 and events[-1].progress == 100
    assert {e.task_id for e in events} == {task_id} and {e.account_id for e in events} == {account_id}

    second = await submit(db, account_id, hub)
    async with db.write() as session:
        assert await service.fail_and_refund(session, second, "bad input", events=hub)
    third = await submit(db, account_id, hub)
    async with db.write() as session:
        assert await service.cancel_and_refund(session, third, account_id, events=hub)
    await seen.wait_for(10)
    assert seen.kinds()[6:] == ["accepted", "failed", "accepted", "cancelled"]
    assert seen.events[-1].status == "CANCELLED"
    await asyncio.sleep(0.05)
    assert len(seen.events) == 10  # exactly one each
    await hub.close()


async def test_a_rolled_back_transition_emits_nothing(db: Database) -> None:
    hub, seen = EventHub(), Recorder()
    hub.subscribe(seen)
    account_id = await new_account(db, 1000)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await service.submit(session, account_id, None, parse_generate(dict(REQUEST)), 2, events=hub)
            raise RuntimeError("boom")
    await asyncio.sleep(0.1)
    assert seen.events == [] and await balance(db, account_id) == 1000
    await hub.close()


async def test_failing_and_slow_subscribers_neither_break_nor_slow_a_transition(db: Database) -> None:
    hub, seen = EventHub(), Recorder()
    release = asyncio.Event()

    async def failing(event: TaskEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def slow(event: TaskEvent) -> None:
        await release.wait()

    hub.subscribe(failing)
    hub.subscribe(slow)
    hub.subscribe(seen)
    account_id = await new_account(db, 1000)
    started = time.monotonic()
    task_ids = [await submit(db, account_id, hub) for _ in range(3)]
    async with db.write() as session:
        assert await service.cancel_and_refund(session, task_ids[0], events=hub)
    assert time.monotonic() - started < 2  # the slow subscriber holds nothing up
    assert len(await seen.wait_for(4)) == 4  # and the healthy one got every event, after a failing one
    assert await balance(db, account_id) == 1000 - 2 * 120
    release.set()
    await hub.close()


async def test_cancel_racing_succeed_ends_in_exactly_one_outcome(db: Database) -> None:
    hub, seen = EventHub(), Recorder()
    hub.subscribe(seen)
    account_id = await new_account(db, 10_000)
    outcomes = []
    for _ in range(6):
        task_id = await submit(db, account_id, hub)
        async with db.write() as session:
            claim = await service.start(session, task_id, "w", events=hub)
        assert claim is not None

        async def cancel(task_id: str = task_id) -> bool:
            async with db.write() as session:
                return await service.cancel_and_refund(session, task_id, account_id, events=hub)

        async def succeed(task_id: str = task_id, attempt: int = claim.attempt) -> bool:
            async with db.write() as session:
                return await service.succeed(session, task_id, account_id, attempt, RESULT, events=hub)

        cancelled, succeeded = await asyncio.gather(cancel(), succeed())
        assert cancelled != succeeded  # exactly one of them
        async with db.read() as session:
            task = await task_repo.get(session, task_id)
            assert task is not None
            assert task.status == (TaskStatus.CANCELLED if cancelled else TaskStatus.SUCCESS)
            refunds = [
                e for e in await accounts.ledger(session, account_id) if e.kind == "refund" and e.task_id == task_id
            ]
        assert len(refunds) == (1 if cancelled else 0)
        outcomes.append(cancelled)
        async with db.write() as session:  # a second cancel changes nothing and refunds nothing
            assert not await service.cancel_and_refund(session, task_id, events=hub)
    cancelled_count = sum(outcomes)
    assert await balance(db, account_id) == 10_000 - (6 - cancelled_count) * 120
    async with db.read() as session:
        assert await accounts.ledger_sum(session, account_id) == await balance(db, account_id)
    await seen.wait_for(6 * 3)
    finals = [e.kind for e in seen.events if e.kind in ("succeeded", "cancelled")]
    assert len(finals) == 6 and finals.count("cancelled") == cancelled_count
    await hub.close()


async def test_cancel_is_scoped_to_the_account(db: Database) -> None:
    hub = EventHub()
    owner, other = await new_account(db, 500), await new_account(db, 500)
    task_id = await submit(db, owner, hub)
    async with db.write() as session:
        assert not await service.cancel_and_refund(session, task_id, other, events=hub)
    async with db.write() as session:
        assert await service.cancel_and_refund(session, task_id, owner, events=hub)
        task = await task_repo.get(session, task_id)
        assert task is not None and task.error_message == "cancelled by the client"
    assert await balance(db, owner) == 500


@pytest.fixture
async def pg_db(migrated_template: str) -> AsyncIterator[Database]:
    with services.fresh_database(template=migrated_template) as url:
        database = Database(url)
        yield database
        await database.dispose()


async def test_notify_from_one_connection_reaches_a_hub_listening_on_another(pg_db: Database) -> None:
    """Distributed mode: a worker's transition (NOTIFY in its transaction) reaches an API node's hub."""
    api_hub, seen = EventHub(notify=True), Recorder()
    api_hub.subscribe(seen)
    listener = PgListener(pg_db.url, api_hub)
    await listener.start()
    worker_hub = EventHub(notify=True)  # publishes only; nothing local
    worker_local = Recorder()
    worker_hub.subscribe(worker_local)
    try:
        account_id = await new_account(pg_db, 1000)
        async with pg_db.write() as session:
            task = await service.submit(session, account_id, None, parse_generate(dict(REQUEST)), 2, events=worker_hub)
            await asyncio.sleep(0.2)
            assert seen.events == []  # NOTIFY is delivered on commit, not before
        with pytest.raises(RuntimeError):
            async with pg_db.write() as session:
                await service.cancel_and_refund(session, task.id, events=worker_hub)
                raise RuntimeError("rolled back")
        async with pg_db.write() as session:
            await service.start(session, task.id, "w", events=worker_hub)
        events = await seen.wait_for(2)
        await asyncio.sleep(0.2)
        assert [e.kind for e in events] == ["accepted", "started"]  # the rolled-back cancel never arrived
        assert events[0].task_id == task.id and events[0].account_id == account_id
        assert worker_local.events == []
    finally:
        await listener.stop()
        await api_hub.close()
