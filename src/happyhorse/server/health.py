"""``GET /healthz``: 200 ``{"status": "ok"}`` while this node can do its work, else 503 saying why.

Three checks, each a sentence when it fails:

- ``database``: a write transaction can start (``store.write_probe``), not just a read: a SQLite file
  whose write lock another process holds, or a PostgreSQL that is restarting, still wedges every task.
- ``data_dir``: a small file can be written and synced in the data directory (a full disk; SQLite
  may still commit into space its WAL already has, but renders, results and uploads cannot).
- ``dispatcher``: the dispatcher's own ``problem()`` (embedded mode: tasks wait and its loop has not
  moved for ``HAPPYHORSE_DISPATCH_STUCK_AFTER`` seconds).

The probes write, so they are rate-limited: one run at a time, its answer reused for
``PROBE_EVERY_S`` seconds (a balancer polling every second costs one probe per interval), each
bounded by ``PROBE_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from happyhorse.dispatch.base import Dispatcher
from happyhorse.server.services import services
from happyhorse.store.db import Database
from happyhorse.store.write_probe import write_problem

log = logging.getLogger("happyhorse.server")

PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 2.0
PROBE_BYTES = 4096

router = APIRouter()


class Health:
    def __init__(self, db: Database, data_dir: Path, dispatcher: Dispatcher) -> None:
        self.db = db
        self.data_dir = data_dir
        self.dispatcher = dispatcher
        self._lock = asyncio.Lock()
        self._answer: dict[str, str] = {}
        self._at = -PROBE_EVERY_S

    async def problems(self) -> dict[str, str]:
        """Each failing check and why; empty when all pass. At most one probe per ``PROBE_EVERY_S``."""
        async with self._lock:
            if time.monotonic() - self._at >= PROBE_EVERY_S:
                self._answer = await self._probe()
                self._at = time.monotonic()
                if self._answer:
                    log.warning("unhealthy: %s", self._answer)
            return self._answer

    async def _probe(self) -> dict[str, str]:
        found: dict[str, str] = {}
        database = await write_problem(self.db, PROBE_TIMEOUT_S)
        if database is not None:
            found["database"] = f"cannot be written: {database}"
        data_dir = await self._data_dir_problem()
        if data_dir is not None:
            found["data_dir"] = f"cannot be written: {data_dir}"
        try:
            dispatcher = await asyncio.wait_for(self.dispatcher.problem(), PROBE_TIMEOUT_S)
        except Exception as exc:  # its read failed or hung: the database check says why
            dispatcher = f"its state could not be read ({type(exc).__name__})"
        if dispatcher is not None:
            found["dispatcher"] = dispatcher
        return found

    async def _data_dir_problem(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(_write_and_sync, self.data_dir / ".healthz"), PROBE_TIMEOUT_S)
        except TimeoutError:
            return f"a {PROBE_BYTES}-byte write did not finish within {PROBE_TIMEOUT_S:g} s"
        except OSError as exc:
            return exc.strerror or str(exc)
        return None


def _write_and_sync(path: Path) -> None:
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


@router.get("/healthz", tags=["ops"], summary="200 while the database takes writes and tasks are dispatched")
async def healthz(request: Request) -> JSONResponse:
    """``{"status": "ok"}``, or 503 with ``{"status": "unavailable", "problems": {check: why}}``."""
    problems = await services(request).health.problems()
    if not problems:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
