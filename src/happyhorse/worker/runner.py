"""One task end to end, for any dispatcher: fetch inputs → render in an engine process → store → complete.

Every write is fenced by the attempt this runner claimed, so a runner that lost its task (to a
retry elsewhere) can finish late without changing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from happyhorse import logs
from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest, frame_shots, nearest_aspect_ratio
from happyhorse.engines.base import RenderCancelled
from happyhorse.media.images import image_size
from happyhorse.media.safe_fetch import FetchError, FetchPolicy, fetch_image
from happyhorse.media.url_rules import with_private_hint
from happyhorse.metrics import RENDER_SECONDS
from happyhorse.storage.base import ResultStore
from happyhorse.storage.uploads import own_upload_path, read_upload
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.worker.engine_process import EngineCrashed, EngineProcess, RenderFailed
from happyhorse.worker.job import ElementSpec, RenderJob, RenderResult, ShotSpec

log = logging.getLogger("happyhorse.worker")

PROGRESS_WRITE_EVERY_S = 0.5


class TaskRunner:
    def __init__(self, db: Database, settings: Settings, store: ResultStore, events: EventHub | None = None) -> None:
        self.db = db
        self.events = events  # None: the process's hub
        self.settings = settings
        self.store = store
        self.fetch_policy = FetchPolicy.from_settings(settings)
        self.work_dir = settings.data_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)

    async def run(self, task_id: str, attempt: int, engine: EngineProcess) -> str:
        """Run a claimed attempt to its end. Returns "success", "failed", "cancelled", "crashed" or "lost"."""
        async with self.db.read() as session:
            task = await task_repo.get(session, task_id)
        if task is None:
            return "lost"
        request = service.request_of(task.spec)
        account_id = task.account_id
        logs.task_id.set(task_id)  # this render's log lines name the task (JSON logs)
        started = time.monotonic()
        try:
            job = await self.prepare(task_id, attempt, task.seed, request)
        except FetchError as exc:
            await self.fail(task_id, attempt, with_private_hint(str(exc)))
            return "failed"
        try:
            result = await self.render(job, engine, account_id)
        except RenderFailed as exc:
            await self.fail(task_id, attempt, str(exc))
            return "failed"
        except RenderCancelled:  # the task was cancelled (or handed elsewhere): nothing of it is kept
            with contextlib.suppress(OSError):
                Path(job.output_path).unlink(missing_ok=True)
            log.info("task %s attempt %s: render stopped (cancelled)", task_id, attempt)
            return "cancelled"
        except EngineCrashed:
            log.error("engine crashed while rendering task %s", task_id)
            await self.fail(task_id, attempt, "the engine process crashed while rendering this task")
            return "crashed"
        outcome = await self.finish(task_id, attempt, job, result, account_id)
        if outcome == "success":
            RENDER_SECONDS.labels(self.settings.engine, request.mode, request.type).observe(time.monotonic() - started)
        return outcome

    async def prepare(self, task_id: str, attempt: int, seed: int, request: GenerateRequest) -> RenderJob:
        """Fetch every input image (SSRF-guarded) and describe the render."""
        images = await asyncio.gather(*(self._fetch(f"image_urls[{i}]", url)
                                        for i, url in enumerate(request.image_urls)))
        elements = []
        for i, element in enumerate(request.elements):
            data = await asyncio.gather(*(self._fetch(f"elements[{i}].element_input_urls[{j}]", url)
                                          for j, url in enumerate(element.urls)))
            elements.append(ElementSpec(element.name, element.description, list(data)))
        aspect = request.aspect_ratio
        if images:
            aspect = nearest_aspect_ratio(*image_size(images[0]))  # the output follows the first image
        return RenderJob(
            task_id=task_id, attempt=attempt,
            output_path=str(self.work_dir / f"{task_id}-{attempt}.mp4"),
            mode=request.mode, aspect_ratio=aspect, sound=request.sound, seed=seed,
            cfg_scale=request.cfg_scale, negative_prompt=request.negative_prompt,
            shots=[ShotSpec(shot.prompt, shot.duration) for shot in frame_shots(request)],
            first_image=images[0] if images else None,
            last_image=images[1] if len(images) > 1 else None,
            elements=elements,
            watermark=request.watermark,
        )

    async def _fetch(self, field: str, url: str) -> bytes:
        # An upload to this server is read straight from storage: fetching it would loop back to
        # ourselves, which the SSRF guard rightly refuses. own_upload_path matches host and exact path.
        own = own_upload_path(url, self.settings)
        if own is not None:
            data = await asyncio.to_thread(read_upload, own)
            if data is not None:
                return data
        return await fetch_image(url, self.fetch_policy, field=field)

    async def render(self, job: RenderJob, engine: EngineProcess, account_id: str = "") -> RenderResult:
        """Render with progress written to the task at most every half second."""
        latest: list[float] = [0.0]
        written = -1

        async def write_progress() -> None:
            nonlocal written
            while True:
                await asyncio.sleep(PROGRESS_WRITE_EVERY_S)
                percent = min(99, int(latest[0] * 100))
                if percent != written:
                    written = percent
                    async with self.db.write() as session:
                        await service.progress(session, job.task_id, account_id, job.attempt, percent, self.events)

        writer = asyncio.create_task(write_progress())
        try:
            return await engine.render(job, lambda fraction: latest.__setitem__(0, fraction))
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def finish(self, task_id: str, attempt: int, job: RenderJob, result: RenderResult,
                     account_id: str = "") -> str:
        key = f"{task_id}-{attempt}.mp4"
        await asyncio.to_thread(self.store.put, Path(job.output_path), key)
        fields = {"result_key": key, "width": result.width, "height": result.height,
                  "result_duration": result.duration, "has_audio": result.has_audio}
        async with self.db.write() as session:
            done = await service.succeed(session, task_id, account_id, attempt, fields, self.events)
        with contextlib.suppress(OSError):
            Path(job.output_path).unlink(missing_ok=True)
        if not done:  # another attempt owns the task now, or it was cancelled: leave no stray object behind
            log.warning("task %s attempt %s finished late; discarding its result", task_id, attempt)
            await asyncio.to_thread(self.store.delete, key)
            return "lost"
        log.info("task %s done: %sx%s, %.2fs", task_id, result.width, result.height, result.duration)
        return "success"

    async def fail(self, task_id: str, attempt: int, message: str) -> None:
        async with self.db.write() as session:
            await service.fail_and_refund(session, task_id, message, attempt, self.events)
        with contextlib.suppress(OSError):
            (self.work_dir / f"{task_id}-{attempt}.mp4").unlink(missing_ok=True)
