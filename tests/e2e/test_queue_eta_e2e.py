"""``queue_position`` and ``eta_seconds`` in the status object, through the real server, both deployments."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from harness import Cluster, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

SHORT = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}
LONG = {**SHORT, "mode": "pro", "duration": 15, "sound": True}


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_position_and_estimate(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    server = server_factory() if mode == "embedded" else cluster_factory().apis[0]
    client = server.client(server.create_key(credits=100_000))

    def status(task_id: str) -> dict:
        return client.get("/api/status", params={"task_id": task_id}).json()["data"]

    first = client.post("/api/generate", json=SHORT).json()["data"]["task_id"]
    assert status(first)["eta_seconds"] is None  # no history of std 3 s text-to-video yet
    done = wait_for_task(client, first)
    assert done["queue_position"] is None and done["eta_seconds"] is None  # finished: both null

    blocker = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
    deadline = time.monotonic() + 60
    while status(blocker)["progress"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    queued = [client.post("/api/generate", json=SHORT).json()["data"]["task_id"] for _ in range(3)]
    running = status(blocker)
    assert running["queue_position"] is None  # rendering, not waiting
    views = [status(task_id) for task_id in queued]
    assert [v["queue_position"] for v in views] == [1, 2, 3]
    etas = [v["eta_seconds"] for v in views]
    assert all(isinstance(e, int) and e >= 1 for e in etas), etas  # from the first task's render time
    assert etas == sorted(etas) and etas[0] < etas[-1], etas  # further back, later
    listed = {t["task_id"]: t for t in client.get("/api/tasks").json()["data"]["tasks"]}
    assert listed[queued[2]]["queue_position"] == 3  # the same object everywhere

    # the line moves up: in status, and pushed to a stream open on a task further back
    with client.stream("GET", "/api/status/stream", params={"task_id": queued[2]}, timeout=30) as stream:
        lines = stream.iter_lines()
        positions = (json.loads(line[6:])["queue_position"] for line in lines if line.startswith("data: "))
        assert next(positions) == 3
        client.post("/api/cancel", json={"task_id": queued[0]})
        assert next(positions) == 2  # pushed when the line moved, long before the task starts
    assert status(queued[1])["queue_position"] == 1
