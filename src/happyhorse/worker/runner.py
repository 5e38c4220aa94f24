"""One task end to end, for any dispatcher: fetch inputs → render in an engine process → store → complete.

Every write is fenced by the attempt this runner claimed, so a runner that lost its task (to a
retry elsewhere) can finish late without changing anything.

A terminal write the database refuses (its write lock held past the busy timeout, a full disk, a
PostgreSQL restart) never escapes ``run``: the outcome is kept in ``unwritten`` and the run returns
"unwritten", so the dispatcher frees the engine at once. The dispatcher's backstop calls
``write_unwritten`` until the database takes it; the writes are fenced, so one that comes too late
(the task was cancelled or retried meanwhile) changes nothing and its stored video is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from happyhorse import logs
from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest, frame_shots, nearest_aspect_ratio
from happyhorse.engines.base import RenderCancelled
from happyhorse.media.images import image_size
from happyhorse.media.safe_fetch import FetchError, FetchPolicy, fetch_image
from happyhorse.media.url_rules import with_private_hint
from happyhorse.metrics import RENDER_SECONDS
from happyhorse.storage.base import ResultStore
from happyhorse.storage.uploads import create_upload_store, own_upload_name
from happyhorse.store import tasks as task_repo
from happyhorse.store.db import Database
from happyhorse.tasks import service
from happyhorse.tasks.events import EventHub
from happyhorse.worker.engine_process import EngineCrashed, EngineProcess, RenderFailed
from happyhorse.worker.job import ElementSpec, RenderJob, RenderResult, ShotSpec

log = logging.getLogger("happyhorse.worker")

PROGRESS_WRITE_EVERY_S = 0.5
STORE_FAILED_MESSAGE = "the server could not store the finished video"
INTERNAL_ERROR_MESSAGE = "internal error while rendering this task"


@dataclass
class Unwritten:
    """A finished attempt whose terminal write the database refused; written again by ``write_unwritten``."""

    task_id: str
    attempt: int
    account_id: str
    result: dict[str, Any] | None  # the SUCCESS fields, or None for a failure
    message: str = ""  # the failure's message


class TaskRunner:
    def __init__(self, db: Database, settings: Settings, store: ResultStore, events: EventHub | None = None) -> None:
        self.db = db
        self.events = events  # None: the process's hub
        self.settings = settings
        self.store = store
        self.uploads = create_upload_store(settings, store)
        self.fetch_policy = FetchPolicy.from_settings(settings)
        self.work_dir = settings.data_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.unwritten: dict[str, Unwritten] = {}  # task id → its outcome, until the database takes it

    async def run(self, task_id: str, attempt: int, engine: EngineProcess) -> str:
        """Run a claimed attempt to its end. Returns "success", "failed", "cancelled", "crashed", "lost" or
        "unwritten" (the outcome waits in ``unwritten``). "crashed": the engine process must be replaced.

        Raises only when the task could not be read or its inputs prepared (the engine never saw it)."""
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
            return await self.fail(task_id, attempt, with_private_hint(str(exc)))
        try:
            result = await self.render(job, engine, account_id)
        except RenderFailed as exc:
            return await self.fail(task_id, attempt, str(exc))
        except RenderCancelled:  # the task was cancelled (or handed elsewhere): nothing of it is kept
            with contextlib.suppress(OSError):
                Path(job.output_path).unlink(missing_ok=True)
            log.info("task %s attempt %s: render stopped (cancelled)", task_id, attempt)
            return "cancelled"
        except EngineCrashed:
            log.error("engine crashed while rendering task %s", task_id)
            return await self.fail(task_id, attempt, "the engine process crashed while rendering this task", "crashed")
        except Exception:  # the engine's state is unknown (it may still hold the job): it is replaced
            log.exception("task %s: unexpected error while rendering", task_id)
            return await self.fail(task_id, attempt, INTERNAL_ERROR_MESSAGE, "crashed")
        outcome = await self.finish(task_id, attempt, job, result, account_id)
        if outcome == "success":
            RENDER_SECONDS.labels(self.settings.engine, request.mode, request.type).observe(time.monotonic() - started)
        return outcome

    async def prepare(self, task_id: str, attempt: int, seed: int, request: GenerateRequest) -> RenderJob:
        """Fetch every input image (SSRF-guarded) and describe the render."""
        images = await asyncio.gather(
            *(self._fetch(f"image_urls[{i}]", url) for i, url in enumerate(request.image_urls))
        )
        elements = []
        for i, element in enumerate(request.elements):
            data = await asyncio.gather(
                *(self._fetch(f"elements[{i}].element_input_urls[{j}]", url) for j, url in enumerate(element.urls))
            )
            elements.append(ElementSpec(element.name, element.description, list(data)))
        aspect = request.aspect_ratio
        if images:
            aspect = nearest_aspect_ratio(*image_size(images[0]))  # the output follows the first image
        return RenderJob(
            task_id=task_id,
            attempt=attempt,
            output_path=str(self.work_dir / f"{task_id}-{attempt}.mp4"),
            request=request,
            aspect_ratio=aspect,
            seed=seed,
            shots=[ShotSpec(shot.prompt, shot.duration) for shot in frame_shots(request)],
            first_image=images[0] if images else None,
            last_image=images[1] if len(images) > 1 else None,
            elements=elements,
        )

    async def _fetch(self, field: str, url: str) -> bytes:
        # An upload to this server is read straight from the upload store (the bucket, in a distributed
        # deployment): fetching it would loop back to an API node, which the SSRF guard rightly refuses.
        name = own_upload_name(url)
        if name is not None:
            data = await asyncio.to_thread(self.uploads.read, name)
            if data is not None:
                return data
        return await fetch_image(url, self.fetch_policy, field=field)

    async def render(self, job: RenderJob, engine: EngineProcess, account_id: str = "") -> RenderResult:
        """Render with progress written to the task at most every half second."""
        latest: list[float] = [0.0]
        written = -1
        refused = 0  # progress writes the database refused in a row (logged once per outage)

        async def write_progress() -> None:
            nonlocal written, refused
            while True:
                await asyncio.sleep(PROGRESS_WRITE_EVERY_S)
                percent = min(99, int(latest[0] * 100))
                if percent != written:
                    try:
                        async with self.db.write() as session:
                            await service.progress(session, job.task_id, account_id, job.attempt, percent, self.events)
                        written, refused = percent, 0
                    except Exception as exc:  # a hint only: the render goes on, the next write retries
                        refused += 1
                        if refused == 1:
                            log.warning("task %s: progress not written (%s); retrying", job.task_id, type(exc).__name__)

        writer = asyncio.create_task(write_progress())
        try:
            return await engine.render(job, lambda fraction: latest.__setitem__(0, fraction))
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def finish(
        self, task_id: str, attempt: int, job: RenderJob, result: RenderResult, account_id: str = ""
    ) -> str:
        key = f"{task_id}-{attempt}.mp4"
        try:
            await asyncio.to_thread(self.store.put, Path(job.output_path), key)
        except Exception:  # a full disk, an unreachable bucket: the task fails and is refunded
            log.exception("task %s: could not store its video", task_id)
            await self._delete_result(key)
            return await self.fail(task_id, attempt, STORE_FAILED_MESSAGE)
        fields = {
            "result_key": key,
            "width": result.width,
            "height": result.height,
            "result_duration": result.duration,
            "has_audio": result.has_audio,
        }
        with contextlib.suppress(OSError):
            Path(job.output_path).unlink(missing_ok=True)
        outcome = await self._write(Unwritten(task_id, attempt, account_id, fields))
        if outcome == "success":
            log.info("task %s done: %sx%s, %.2fs", task_id, result.width, result.height, result.duration)
        return outcome

    async def fail(self, task_id: str, attempt: int, message: str, outcome: str = "failed") -> str:
        """End the attempt FAILED and refunded; returns ``outcome``, or "unwritten" when the database
        refused the write (it is retried by ``write_unwritten``), unless the outcome is "crashed" (the
        engine must be replaced whatever the database said). Never raises for a database error."""
        with contextlib.suppress(OSError):
            (self.work_dir / f"{task_id}-{attempt}.mp4").unlink(missing_ok=True)
        written = await self._write(Unwritten(task_id, attempt, "", None, message))
        return "unwritten" if written == "unwritten" and outcome != "crashed" else outcome

    async def _write(self, pending: Unwritten) -> str:
        """One terminal write: "success", "failed", "lost" (the attempt no longer owns the task) or
        "unwritten" (the database refused it: kept for ``write_unwritten``)."""
        try:
            async with self.db.write() as session:
                if pending.result is None:
                    done = await service.fail_and_refund(
                        session, pending.task_id, pending.message, pending.attempt, self.events
                    )
                else:
                    done = await service.succeed(
                        session, pending.task_id, pending.account_id, pending.attempt, pending.result, self.events
                    )
        except Exception as exc:
            log.warning(
                "task %s attempt %s: its outcome could not be written (%s: %s); retrying later",
                pending.task_id,
                pending.attempt,
                type(exc).__name__,
                exc,
            )
            self.unwritten[pending.task_id] = pending
            return "unwritten"
        self.unwritten.pop(pending.task_id, None)
        if pending.result is None:
            return "failed"
        if not done:  # another attempt owns the task now, or it was cancelled: leave no stray object behind
            log.warning("task %s attempt %s finished late; discarding its result", pending.task_id, pending.attempt)
            await self._delete_result(pending.result["result_key"])
            return "lost"
        return "success"

    async def write_unwritten(self) -> int:
        """Write the outcomes the database refused, oldest first; stops at the first refusal (it is
        still down). Returns how many were written."""
        written = 0
        for pending in list(self.unwritten.values()):
            if await self._write(pending) == "unwritten":
                break
            written += 1
            log.info("task %s attempt %s: its outcome is written now", pending.task_id, pending.attempt)
        return written

    async def _delete_result(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.store.delete, key)
        except Exception:
            log.warning("could not delete the stray result %s", key, exc_info=True)
