"""EmbeddedDispatcher.cancel: the task ends CANCELLED and refunded at once; the render that was running
returns later, its SUCCESS write is fenced out, its result is removed and its engine slot is freed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from happyhorse.config import Settings
from happyhorse.contract import parse_generate
from happyhorse.dispatch.embedded import EmbeddedDispatcher
from happyhorse.storage import create_store
from happyhorse.store import accounts
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.store.migrate import upgrade
from happyhorse.tasks import service
from happyhorse.tasks.events import TaskEvent
from happyhorse.tasks.status import TaskStatus
from happyhorse.worker.job import RenderJob, RenderResult

REQUEST = {"model": "happyhorse-1.0/video", "prompt": "a fox", "duration": 3, "sound": False}  # 120 credits


class HeldEngine:
    """Renders only when told to, so a cancel can land mid-render."""

    name = "held"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()
        self.interrupted: list[str] = []

    async def render(self, job: RenderJob, on_progress: object) -> RenderResult:
        self.started.set()
        await self.go_on.wait()
        Path(job.output_path).write_bytes(b"not really an mp4")
        return RenderResult(width=16, height=16, duration=3.0, num_frames=72, has_audio=False)

    def interrupt(self, task_id: str) -> bool:
        # Past its last step: the render finishes anyway (the race the fence is for).
        self.interrupted.append(task_id)
        return False

    async def stop(self) -> None:
        pass


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Database, EmbeddedDispatcher]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hh.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(database_url=url, data_dir=tmp_path)
    settings.ensure_dirs()
    dispatcher = EmbeddedDispatcher(db, settings, create_store(settings))
    yield db, dispatcher
    await db.dispose()


async def test_cancel_mid_render_refunds_fences_the_late_success_and_frees_the_slot(
    setup: tuple[Database, EmbeddedDispatcher],
) -> None:
    db, dispatcher = setup
    seen: list[TaskEvent] = []

    async def record(event: TaskEvent) -> None:
        seen.append(event)

    dispatcher.events.subscribe(record)
    released: list[object] = []
    dispatcher.engines.release = released.append  # type: ignore[method-assign,assignment]
    async with db.write() as session:
        account_id = (await accounts.create_account(session, "acct", 500)).id
        task = await service.submit(
            session, account_id, None, parse_generate(dict(REQUEST)), 2, events=dispatcher.events
        )
    claim = await dispatcher._claim_next()
    assert claim is not None and claim.task_id == task.id
    engine = HeldEngine()
    run = asyncio.create_task(dispatcher._run(claim.task_id, claim.attempt, engine))  # type: ignore[arg-type]
    dispatcher.running[claim.task_id] = run
    await asyncio.wait_for(engine.started.wait(), 10)

    assert await dispatcher.cancel(task.id, account_id)
    async with db.read() as session:
        stored = await task_repo.get(session, task.id)
        assert stored is not None and stored.status == TaskStatus.CANCELLED
        assert stored.error_message == "cancelled by the client"
        assert await accounts.balance(session, account_id) == 500
    assert not await dispatcher.cancel(task.id, account_id)  # once
    assert engine.interrupted == [task.id]  # the engine was told to stop

    engine.go_on.set()  # the render returns after the cancel
    await asyncio.wait_for(run, 10)
    assert released == [engine]  # the slot is free again
    assert task.id not in dispatcher.running
    async with db.read() as session:
        stored = await task_repo.get(session, task.id)
        assert stored is not None and stored.status == TaskStatus.CANCELLED and stored.result_key is None
        assert await accounts.balance(session, account_id) == 500
    key = f"{task.id}-{claim.attempt}.mp4"
    assert not dispatcher.runner.store.exists(key)  # type: ignore[attr-defined]
    assert not (dispatcher.runner.work_dir / key).exists()
    await asyncio.sleep(0.05)
    assert [e.kind for e in seen] == ["accepted", "started", "cancelled"]  # no late "succeeded"
    await dispatcher.events.close()
