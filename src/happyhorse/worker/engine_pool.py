"""A worker's engine processes: one per GPU (or N on the CPU), handed out one job at a time; with a
``parallel`` profile, one engine group of N processes per N GPUs instead (engine_group.py).

An engine that dies is restarted in the background with backoff; the slot comes back when it is
ready, so a crash costs one task (failed or retried) and never the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from happyhorse.config import Settings
from happyhorse.worker.engine_group import EngineGroup, plan_slots
from happyhorse.worker.engine_process import EngineCrashed, EngineProcess

log = logging.getLogger("happyhorse.worker")

RESTART_FIRST_DELAY_S = 5.0
RESTART_MAX_DELAY_S = 120.0


class EnginePool:
    def __init__(self, settings: Settings) -> None:
        slots = plan_slots(settings)  # raises GroupingError when the GPUs cannot be grouped as asked
        self.engines = [
            EngineProcess(settings, slot.devices[0] if slot.devices else None, f"engine-{i}")
            if slot.ranks == 1
            else EngineGroup(settings, slot.devices, slot.ranks, f"engine-{i}")
            for i, slot in enumerate(slots)
        ]
        self._idle: asyncio.Queue[EngineProcess] = asyncio.Queue()
        self._restarts: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self.engines)

    async def start(self) -> None:
        """Start every engine (retrying a failed load with backoff) and wait until all are ready."""
        await asyncio.gather(*(self._start(engine) for engine in self.engines))

    async def _start(self, engine: EngineProcess) -> None:
        delay = RESTART_FIRST_DELAY_S
        while True:
            try:
                await engine.start()
                break
            except EngineCrashed as exc:
                log.error("%s; retrying in %.0fs", exc, delay)
                await engine.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_DELAY_S)
        self._idle.put_nowait(engine)

    async def acquire(self) -> EngineProcess:
        return await self._idle.get()

    def release(self, engine: EngineProcess) -> None:
        """Give an engine back; a dead one is restarted first (in the background)."""
        if engine.alive():
            self._idle.put_nowait(engine)
            return
        restart = asyncio.create_task(self._restart(engine), name=f"restart {engine.name}")
        self._restarts.add(restart)
        restart.add_done_callback(self._restarts.discard)

    async def _restart(self, engine: EngineProcess) -> None:
        await engine.stop()
        await self._start(engine)

    async def stop(self) -> None:
        for restart in list(self._restarts):
            restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await restart
        await asyncio.gather(*(engine.stop() for engine in self.engines), return_exceptions=True)
