"""Two API processes and two workers on one PostgreSQL; a worker is SIGKILLed mid-render.

What a user (and the operator's books) would notice: every task ends SUCCESS, the task that was
rendering on the dead worker is retried on the other, every account's balance equals the sum of its
ledger, and each task has exactly one video in the bucket.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import Cluster, wait_for_task

MODEL = "happyhorse-1.0/video"
TASKS = 20
COST = 40 * 3  # std, 3 s, no sound
CREDITS = 10_000

pytestmark = pytest.mark.slow


def wait_for_running_on(cluster: Cluster, worker_pid: int, timeout: float = 120) -> str:
    """A task that worker is rendering right now (claimed and past its first progress write)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = cluster.query(
            "SELECT id FROM tasks WHERE status = 'RUNNING' AND progress > 0 AND worker_id LIKE %s",
            f"%:{worker_pid}/job-%",
        )
        if rows:
            return str(rows[0][0])
        time.sleep(0.1)
    raise AssertionError(f"worker {worker_pid} never started a task:\n{cluster.apis[0].log()}")


def test_sigkilled_worker_loses_no_task_and_no_credit(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(
        apis=2, workers=2, HAPPYHORSE_STALL_TIMEOUT="5", HAPPYHORSE_RATE_LIMIT_GENERATE="100/second"
    )
    first, second = cluster.apis
    keys = [first.create_key_info(credits=CREDITS, name="alice"), second.create_key_info(credits=CREDITS, name="bob")]

    # 1. Twenty tasks, alternating API nodes and accounts, sent concurrently.
    def submit(i: int) -> tuple[int, str]:
        api, key = cluster.apis[i % 2], keys[(i // 2) % 2]
        with api.client(key["api_key"]) as client:
            body = {"model": MODEL, "prompt": f"horse number {i}", "mode": "std", "duration": 3, "sound": False}
            response = client.post("/api/generate", json=body)
        assert response.status_code == 200, response.text
        return i, str(response.json()["data"]["task_id"])

    with ThreadPoolExecutor(8) as pool:
        submitted = dict(pool.map(submit, range(TASKS)))

    # 2. SIGKILL a worker (and its engine) in the middle of a render.
    victim = cluster.workers[0]
    killed_task = wait_for_running_on(cluster, victim.pid)
    victim.kill()

    # 3. Everything finishes, through either API.
    for i, task_id in submitted.items():
        api, key = cluster.apis[(i + 1) % 2], keys[(i // 2) % 2]  # poll through the other node
        with api.client(key["api_key"]) as client:
            data = wait_for_task(client, task_id, timeout=400)
        assert data["status"] == "SUCCESS", f"{task_id}: {data['error_message']}\n{first.log()}"

    # 4. The killed task was retried on the other worker.
    attempt, worker_id = cluster.query("SELECT attempt, worker_id FROM tasks WHERE id = %s", killed_task)[0]
    assert attempt == 2 and f":{victim.pid}/" not in worker_id

    # 5. Credits are exact: balance == ledger sum == grant − costs of what each account submitted.
    for n, key in enumerate(keys):
        balance, ledger = cluster.query(
            "SELECT a.balance, (SELECT sum(amount) FROM ledger l WHERE l.account_id = a.id) "
            "FROM accounts a WHERE a.id = %s",
            key["account"],
        )[0]
        spent = COST * sum(1 for i in submitted if (i // 2) % 2 == n)
        assert balance == ledger == CREDITS - spent

    # 6. One video per task in the bucket, under the attempt that completed it.
    rows = cluster.query("SELECT id, result_key FROM tasks")
    assert len(rows) == TASKS
    expected = sorted(f"{cluster.s3_prefix}/{result_key}" for _, result_key in rows)
    assert sorted(cluster.result_keys()) == expected
