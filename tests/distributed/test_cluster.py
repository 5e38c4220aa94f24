"""Distributed mode's own behaviour, against real PostgreSQL, Redis, SeaweedFS and worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from happyhorse.config import Settings
from happyhorse.dispatch.distributed import DistributedDispatcher
from happyhorse.store.db import Database
from harness import Cluster, wait_for_task

MODEL = "happyhorse-1.0/video"


def submit(client: httpx.Client, **fields: object) -> str:
    body = {"model": MODEL, "prompt": "a horse in the snow", "mode": "std", "duration": 3, "sound": False, **fields}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def wait_until(condition, timeout: float = 60, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running_progress(cluster: Cluster, task_id: str) -> bool:
    rows = cluster.query("SELECT status, progress FROM tasks WHERE id = %s", task_id)
    return bool(rows) and rows[0][0] == "RUNNING" and rows[0][1] > 0


def test_task_renders_to_a_presigned_s3_url(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        data = wait_for_task(client, submit(client), timeout=120)
    assert data["status"] == "SUCCESS", api.log()
    url = data["response"]["resultUrls"][0]
    assert url.startswith(cluster.s3.endpoint + "/") and "X-Amz-Signature=" in url
    full = httpx.get(url, timeout=30)
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and part.content == full.content[:100]
    assert cluster.result_keys() == [f"{cluster.s3_prefix}/{data['task_id']}-1.mp4"]


def test_rate_limits_are_shared_across_api_nodes(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(apis=2, workers=0, HAPPYHORSE_RATE_LIMIT_STATUS="4/minute")
    key = cluster.apis[0].create_key(credits=10)
    codes = []
    for i in range(6):
        with cluster.apis[i % 2].client(key) as client:
            codes.append(client.get("/api/credits").status_code)
    assert codes == [200, 200, 200, 200, 429, 429]


def test_a_task_whose_job_went_missing_is_sent_again(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(workers=0)
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        task_id = submit(client)
        # As if the API had died between its commit and the defer: the task is QUEUED, no job exists.
        cluster.query("DELETE FROM procrastinate_jobs WHERE queueing_lock = %s", task_id)
        wait_until(
            lambda: (
                cluster.query(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo'", task_id
                )[0][0]
                == 1
            ),
            what="the sweeper's job",
        )
        cluster.add_worker()
        assert wait_for_task(client, task_id)["status"] == "SUCCESS"


def test_a_long_render_keeps_its_worker_alive(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """A render longer than the stall timeout is never mistaken for a dead worker: the render runs
    off the event loop, so heartbeats keep flowing."""
    stall = 4
    cluster: Cluster = cluster_factory(HAPPYHORSE_STALL_TIMEOUT=str(stall))
    api = cluster.apis[0]
    with api.client(api.create_key(credits=10_000)) as client:
        task_id = submit(client, mode="pro", duration=15, sound=True)
        wait_until(lambda: running_progress(cluster, task_id), what="the render to start")
        ages = []
        while cluster.query("SELECT status FROM tasks WHERE id = %s", task_id)[0][0] == "RUNNING":
            ages.append(
                float(
                    cluster.query("SELECT extract(epoch FROM now() - max(last_heartbeat)) FROM procrastinate_workers")[
                        0
                    ][0]
                )
            )
            time.sleep(0.25)
        data = wait_for_task(client, task_id)
    assert data["status"] == "SUCCESS"
    attempt, seconds = cluster.query(
        "SELECT attempt, extract(epoch FROM completed_at - started_at) FROM tasks WHERE id = %s", task_id
    )[0]
    assert seconds > stall, f"the render took {seconds}s: too short to show anything"
    assert max(ages) < stall, ages
    assert attempt == 1


def test_cancel_stops_the_render_and_refunds(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        task_id = submit(client, duration=12)
        wait_until(lambda: running_progress(cluster, task_id), what="the render to start")
        asyncio.run(cancel(cluster.database_url, task_id, tmp_path))
        data = wait_for_task(client, task_id)
        assert data["status"] == "FAILED" and data["error_message"] == "cancelled by the client"
        assert client.get("/api/credits").json()["data"]["balance"] == 1000
        wait_until(lambda: "aborted" in cluster.workers[0].log().lower(), what="the job to be aborted")
        # The render was interrupted mid-way (the engine keeps serving): the next task renders normally.
        assert wait_for_task(client, submit(client))["status"] == "SUCCESS"
    assert not any(key.endswith(f"{task_id}-1.mp4") for key in cluster.result_keys())


async def cancel(database_url: str, task_id: str, data_dir: Path) -> None:
    db = Database(database_url)
    dispatcher = DistributedDispatcher(db, Settings(database_url=database_url, data_dir=data_dir), None)  # type: ignore[arg-type]
    await dispatcher.app.open_async()
    try:
        await dispatcher.cancel(task_id)
    finally:
        await dispatcher.app.close_async()
        await db.dispose()


@pytest.mark.slow
def test_a_frozen_workers_late_finish_changes_nothing(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """SIGSTOP a worker mid-render: its task is retried elsewhere. SIGCONT it: whatever it does next
    is fenced by its old attempt — one result, one charge."""
    cluster: Cluster = cluster_factory(workers=2, HAPPYHORSE_STALL_TIMEOUT="3")
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        task_id = submit(client, duration=5)
        wait_until(lambda: running_progress(cluster, task_id), what="the render to start")
        worker_id = cluster.query("SELECT worker_id FROM tasks WHERE id = %s", task_id)[0][0]
        frozen = next(w for w in cluster.workers if f":{w.pid}/" in worker_id)
        os.killpg(frozen.pid, signal.SIGSTOP)
        try:
            data = wait_for_task(client, task_id, timeout=180)
        finally:
            os.killpg(frozen.pid, signal.SIGCONT)
        assert data["status"] == "SUCCESS"
        assert cluster.query("SELECT attempt FROM tasks WHERE id = %s", task_id)[0][0] == 2
        wait_until(
            lambda: "no longer owns" in frozen.log() or "finished late" in frozen.log(),
            what="the thawed worker to give up its attempt",
        )
        time.sleep(1)
        assert client.get("/api/credits").json()["data"]["balance"] == 1000 - 5 * 40
    assert cluster.result_keys() == [f"{cluster.s3_prefix}/{task_id}-2.mp4"]


def test_a_silent_running_task_is_retried(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """The backstop: a RUNNING task whose heartbeat stopped and whose job row is gone."""
    cluster: Cluster = cluster_factory(workers=0, HAPPYHORSE_STALL_TIMEOUT="2")
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        task_id = submit(client)
        cluster.query("DELETE FROM procrastinate_jobs WHERE queueing_lock = %s", task_id)
        cluster.query(
            "UPDATE tasks SET status = 'RUNNING', attempt = 1, worker_id = 'gone:1/job-0', "
            "heartbeat_at = now() - interval '1 hour' WHERE id = %s",
            task_id,
        )
        wait_until(
            lambda: cluster.query("SELECT status FROM tasks WHERE id = %s", task_id)[0][0] == "QUEUED",
            what="the sweeper to requeue the task",
        )
        cluster.add_worker()
        assert wait_for_task(client, task_id)["status"] == "SUCCESS"
    assert cluster.query("SELECT attempt FROM tasks WHERE id = %s", task_id)[0][0] == 2


def test_a_task_out_of_attempts_fails_and_is_refunded(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(HAPPYHORSE_STALL_TIMEOUT="3", HAPPYHORSE_MAX_ATTEMPTS="1")
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        task_id = submit(client, duration=8)
        wait_until(lambda: running_progress(cluster, task_id), what="the render to start")
        cluster.workers[0].kill()
        data = wait_for_task(client, task_id, timeout=60)
        assert data["status"] == "FAILED" and "did not finish after 1 attempts" in data["error_message"]
        assert data["consumed_credits"] == 0
        assert client.get("/api/credits").json()["data"]["balance"] == 1000
    balance, ledger = cluster.query("SELECT balance, (SELECT sum(amount) FROM ledger) FROM accounts")[0]
    assert balance == ledger == 1000
