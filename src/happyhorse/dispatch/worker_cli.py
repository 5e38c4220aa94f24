"""``happyhorse worker``: a procrastinate worker that renders tasks with local engine processes.

Run one per GPU machine (it starts one engine process per GPU it sees), or several on one machine
with ``--gpus``. It needs the same HAPPYHORSE_DATABASE_URL (PostgreSQL) and HAPPYHORSE_STORAGE_URL as
the API nodes; ``happyhorse db upgrade`` must have run.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from happyhorse import logs
from happyhorse.config import Settings


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue", metavar="NAME", help="Queue(s) to take jobs from; repeat or comma-separate (HAPPYHORSE_QUEUE)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="CPU engine processes when no GPU is used (HAPPYHORSE_ENGINE_PROCESSES; default 1).", min=1),
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="GPU indices, one engine process each, e.g. 0,1.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Scratch space for renders (HAPPYHORSE_DATA_DIR).")
    ] = None,
    shutdown_timeout: Annotated[
        float | None,
        typer.Option(
            help="On SIGTERM, seconds to let running renders finish before handing them back to the queue "
            "(default: wait for them)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics (render times) on this port, at /metrics "
            "(Authorization: Bearer HAPPYHORSE_METRICS_TOKEN when that is set)."
        ),
    ] = None,
) -> None:
    """Render tasks from the PostgreSQL queue (distributed mode)."""
    overrides: dict[str, Any] = {"data_dir": data_dir, "gpus": gpus, "engine_processes": concurrency}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings.log_format)
    if metrics_port is not None:
        from happyhorse.metrics import serve_metrics

        serve_metrics(metrics_port, settings.host, settings.metrics_token)
    if settings.is_sqlite:
        typer.echo(
            "error: `happyhorse worker` needs HAPPYHORSE_DATABASE_URL=postgresql+psycopg://… "
            "(embedded mode renders inside `happyhorse serve`)",
            err=True,
        )
        raise typer.Exit(2)
    queues = [name.strip() for item in (queue or [settings.queue]) for name in item.split(",") if name.strip()]
    from happyhorse.dispatch.procrastinate_app import SchemaMissing

    try:
        asyncio.run(run_worker(settings, queues, shutdown_timeout))
    except SchemaMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


async def run_worker(settings: Settings, queues: list[str], shutdown_timeout: float | None = None) -> None:
    from happyhorse.dispatch.procrastinate_app import RUNTIME_KEY, create_app, open_checked
    from happyhorse.dispatch.sweeper import Sweeper
    from happyhorse.dispatch.worker_runtime import WorkerRuntime, heartbeat_interval
    from happyhorse.storage import create_store
    from happyhorse.store.db import Database

    log = logging.getLogger("happyhorse.worker")
    settings.ensure_dirs()
    db = Database(settings.resolved_database_url)
    store = create_store(settings)
    ensure_bucket = getattr(store, "ensure_bucket", None)
    if ensure_bucket is not None:
        await asyncio.to_thread(ensure_bucket)
    runtime_app = create_app(settings.resolved_database_url, pool_size=4)
    await open_checked(runtime_app)  # before loading engines: a missing schema is a quick, clear error
    runtime = WorkerRuntime(db, settings, store, runtime_app)
    sweeper = Sweeper(db, runtime_app, settings, store)
    options: dict[str, object] = {}
    if shutdown_timeout is not None:
        options["shutdown_graceful_timeout"] = shutdown_timeout
    try:
        log.info("starting %s engine process(es), engine %s", len(runtime.pool), settings.engine)
        await runtime.start()
        sweeper.start()
        log.info("worker %s taking jobs from queue(s) %s", runtime.name, ", ".join(queues))
        await runtime_app.run_worker_async(
            queues=queues,
            name=runtime.name,
            concurrency=len(runtime.pool),
            additional_context={RUNTIME_KEY: runtime},
            delete_jobs="successful",
            update_heartbeat_interval=heartbeat_interval(settings),
            stalled_worker_timeout=settings.stall_timeout,
            **options,  # type: ignore[arg-type]
        )
    finally:
        await sweeper.stop()  # before the app's pool closes under it
        await runtime_app.close_async()
        await runtime.stop()
        await db.dispose()
