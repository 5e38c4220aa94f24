"""An engine in its own process: loaded once, kept warm, fed one RenderJob at a time over a pipe.

A crash (segfault, OOM kill) takes down only this process: the parent sees the pipe break, fails
the task it was rendering, and starts a fresh process. Torch is imported only in here. The same
process is also one rank of an engine group (``rank``: see engine_group.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from happyhorse.config import Settings
from happyhorse.worker.job import RenderJob, RenderResult

if TYPE_CHECKING:
    from happyhorse.worker.engine_group import RankSpec

log = logging.getLogger("happyhorse.engine")

PROGRESS_EVERY_S = 0.25  # the child sends at most this often; the DB write is throttled again above


class EngineCrashed(Exception):
    """The engine process died (or could not start) while it held a job."""


class RenderFailed(Exception):
    """The engine reported a failure for this job; the message is safe to show to the user."""


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process if the server dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _set_title(title: str) -> None:
    """Linux: the process name ps and top show (15 characters), so each rank can be told apart."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(15, title.encode()[:15])  # PR_SET_NAME


def engine_main(
    conn: Connection,
    settings_data: dict[str, Any],
    device: str | None,
    cancel_flag: Any = None,
    rank: RankSpec | None = None,
) -> None:
    """Entry point of the child process; with ``rank``, one rank of an engine group."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device  # before anything can import torch
    who = f"{device or os.getpid()}" if rank is None else f"{device or 'cpu'} rank {rank.rank}/{rank.world_size}"
    if rank is not None:
        os.environ.update(rank.env)  # RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK
        _set_title(rank.title)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s engine[{who}] %(message)s")
    group = None
    try:
        from happyhorse.engines.base import EngineError, RenderCancelled
        from happyhorse.engines.registry import create_engine
        from happyhorse.worker.engine_group import RankGroup, scratch_job
        from happyhorse.worker.render import render_job

        if rank is not None:
            group = RankGroup(rank)  # meets the other ranks before any model loads
        engine = create_engine(Settings(**settings_data))
        engine.load()
    except Exception as exc:
        traceback.print_exc()
        conn.send(("load_failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        job: RenderJob = message[1]
        if group is not None and group.rank > 0:
            job = scratch_job(job, group.rank)  # rank 0 writes the task's file
        last = 0.0

        def progress(fraction: float) -> None:
            nonlocal last
            stop = cancel_flag is not None and cancel_flag.is_set()
            if group is not None:
                stop = group.agree_to_stop(stop)  # every rank stops at this same step, or none does
            if stop:
                raise RenderCancelled  # between frame batches / denoising steps: stop here
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S and (group is None or group.rank == 0):
                last = now
                conn.send(("progress", max(0.0, min(1.0, float(fraction)))))

        try:
            result = render_job(job, engine, progress)
            if group is not None and group.rank > 0:
                os.unlink(job.output_path)
            conn.send(("done", result))
        except RenderCancelled:
            with contextlib.suppress(OSError):
                os.unlink(job.output_path)  # the partial file of a cancelled render
            conn.send(("cancelled", None))
        except EngineError as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", "the engine ran out of memory while rendering this task"))
        except Exception as exc:
            traceback.print_exc()
            conn.send(("error", f"the engine failed while rendering this task ({type(exc).__name__})"))


class EngineProcess:
    """The parent's handle on one engine process."""

    def __init__(
        self, settings: Settings, device: str | None = None, name: str = "engine-0", rank: RankSpec | None = None
    ) -> None:
        self.settings = settings
        self.device = device
        self.name = name
        self.rank = rank  # set: one rank of an EngineGroup
        self.process: Any = None
        self.conn: Connection | None = None
        self.ready = False
        self.cancel_flag: Any = None  # set by interrupt(); the child checks it at every progress step
        self.current_task: str | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._start_blocking)

    def _start_blocking(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.cancel_flag = ctx.Event()
        self.process = ctx.Process(
            target=engine_main,
            name=f"happyhorse-{self.name}",
            args=(child, self.settings.model_dump(), self.device, self.cancel_flag, self.rank),
            daemon=True,
        )
        self.process.start()
        child.close()
        self.conn = parent
        kind, detail = self._receive(timeout=None)
        if kind != "ready":
            raise EngineCrashed(f"{self.name} could not load its engine: {detail}")
        self.ready = True
        log.info("%s ready (pid %s, device %s)", self.name, self.process.pid, self.device)

    def _receive(self, timeout: float | None) -> tuple[str, Any]:
        """The next message, or EngineCrashed when the process is gone."""
        assert self.conn is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if self.conn.poll(0.2):
                    return self.conn.recv()  # type: ignore[no-any-return]
            except (EOFError, OSError):
                raise EngineCrashed(f"{self.name} exited (code {self.process.exitcode})") from None
            if not self.process.is_alive():
                raise EngineCrashed(f"{self.name} exited (code {self.process.exitcode})")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError

    async def render(self, job: RenderJob, on_progress: Callable[[float], None]) -> RenderResult:
        """Render a job; raises RenderFailed (engine said no), RenderCancelled (``interrupt``) or
        EngineCrashed (process died)."""
        from happyhorse.engines.base import RenderCancelled

        loop = asyncio.get_running_loop()

        def run() -> RenderResult:
            assert self.conn is not None
            try:
                self.conn.send(("render", job))
            except (OSError, BrokenPipeError):
                raise EngineCrashed(f"{self.name} is not running") from None
            while True:
                kind, detail = self._receive(timeout=None)
                if kind == "progress":
                    loop.call_soon_threadsafe(on_progress, detail)
                elif kind == "done":
                    return detail  # type: ignore[no-any-return]
                elif kind == "cancelled":
                    raise RenderCancelled
                else:
                    raise RenderFailed(str(detail))

        if self.cancel_flag is not None:
            self.cancel_flag.clear()  # a late interrupt of the previous job must not stop this one
        self.current_task = job.task_id
        try:
            return await asyncio.to_thread(run)
        finally:
            self.current_task = None

    def interrupt(self, task_id: str) -> bool:
        """Stop rendering ``task_id`` at its next progress step; the process stays up for the next job.

        False when this engine is not rendering that task (it finished, or never ran here).
        """
        if self.current_task != task_id or self.cancel_flag is None:
            return False
        self.cancel_flag.set()
        log.info("%s: interrupting task %s", self.name, task_id)
        return True

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_blocking)

    def _stop_blocking(self) -> None:
        self.ready = False
        if self.process is None:
            return
        if self.process.is_alive() and self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.send(("stop", None))
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process = None
        self.conn = None


def detect_gpus(settings: Settings) -> list[str]:
    """GPU indices to pin engine processes to: ``--gpus``/HAPPYHORSE_GPUS, else what nvidia-smi lists
    (diffusers engine only; the synthetic engine runs on the CPU)."""
    if settings.gpus:
        return [g.strip() for g in settings.gpus.split(",") if g.strip()]
    if settings.engine != "diffusers":
        return []
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]
