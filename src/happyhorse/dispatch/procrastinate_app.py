"""The procrastinate app both sides share: the API defers render jobs, ``happyhorse worker`` runs them.

A job carries only a task id. The task row says what to render and who owns it; a job is just the
message that wakes a worker, so a duplicate job is harmless (the claim is a conditional UPDATE)
and a missing one is found and re-sent by the sweeper.
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import JobContext
from sqlalchemy.engine import make_url

log = logging.getLogger("happyhorse.dispatch")

RENDER_TASK = "happyhorse.render"
RUNTIME_KEY = "runtime"  # where the worker puts its WorkerRuntime in the job context


def conninfo(database_url: str) -> str:
    """The libpq URL procrastinate's psycopg pool wants, from our SQLAlchemy URL (same database)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"procrastinate needs PostgreSQL; HAPPYHORSE_DATABASE_URL is {url.get_backend_name()}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def render(context: JobContext, task_id: str) -> str:
    """The job: render one task on this worker (see worker_runtime.WorkerRuntime.render)."""
    runtime: Any = context.additional_context[RUNTIME_KEY]
    return str(await runtime.render(task_id, context))


def create_app(database_url: str, pool_size: int = 4) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(database_url), min_size=1, max_size=pool_size)
    app = procrastinate.App(connector=connector)
    app.task(name=RENDER_TASK, pass_context=True, retry=False)(render)
    return app


class SchemaMissing(RuntimeError):
    """procrastinate's tables are not in the database: ``happyhorse db upgrade`` was not run."""


async def open_checked(app: procrastinate.App) -> None:
    """Open the app's pool and fail fast, with the fix in words, if the schema was never applied."""
    await app.open_async()
    if not await app.job_manager.check_connection_async():
        await app.close_async()
        raise SchemaMissing(
            "procrastinate's tables are missing: run `happyhorse db upgrade` against HAPPYHORSE_DATABASE_URL first"
        )


async def defer_render(app: procrastinate.App, task_id: str, queue: str) -> bool:
    """Send a render job for the task; False when one is already waiting (the queueing lock)."""
    deferrer = app.configure_task(RENDER_TASK, queueing_lock=task_id, queue=queue)
    try:
        await deferrer.defer_async(task_id=task_id)
    except AlreadyEnqueued:
        return False
    return True
