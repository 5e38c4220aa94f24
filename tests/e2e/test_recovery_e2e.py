"""Nothing is lost: restarts with tasks in flight, and an engine process that dies mid-render."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from harness import LiveServer, wait_for_task

MODEL = "happyhorse-1.0/video"
LONG = {"model": MODEL, "prompt": "a slow pan over a mountain range", "mode": "pro", "duration": 10, "sound": True}


def wait_until_running(client: httpx.Client, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
        if data["status"] != "IN_PROGRESS" or data.get("progress", 0) > 0:
            return
        time.sleep(0.1)
    raise AssertionError("the task never started rendering")


def engine_pids(server_pid: int) -> list[int]:
    """The server's engine processes (multiprocessing 'spawn' children, not the resource tracker)."""
    children: set[int] = set()
    for thread in Path(f"/proc/{server_pid}/task").iterdir():  # children are listed per spawning thread
        children.update(map(int, (thread / "children").read_text().split()))
    pids = []
    for pid in sorted(children):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_restart_with_tasks_in_flight_loses_nothing(live_server: LiveServer, sig: int) -> None:
    key = live_server.create_key(credits=10_000)
    with live_server.client(key) as client:
        task_ids = [client.post("/api/generate", json=LONG).json()["data"]["task_id"] for _ in range(3)]
        wait_until_running(client, task_ids[0])
    live_server.stop(sig)
    live_server.restart()
    with live_server.client(key) as client:
        results = [wait_for_task(client, task_id, timeout=300) for task_id in task_ids]
        balance = client.get("/api/credits").json()["data"]["balance"]
    assert all(r["status"] in ("SUCCESS", "FAILED") for r in results)
    assert [r["status"] for r in results] == ["SUCCESS"] * 3  # attempts remained: all were resumed
    assert balance == 10_000 - sum(r["consumed_credits"] for r in results)


def test_engine_crash_fails_only_its_task(live_server: LiveServer) -> None:
    key = live_server.create_key(credits=10_000)
    with live_server.client(key) as client:
        task_id = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
        wait_until_running(client, task_id)
        pids = engine_pids(live_server.process.pid)
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        crashed = wait_for_task(client, task_id)
        assert crashed["status"] == "FAILED"
        assert "crash" in crashed["error_message"]
        assert crashed["consumed_credits"] == 0
        assert client.get("/api/credits").json()["data"]["balance"] == 10_000
        # the server kept serving and a fresh engine renders the next task
        short = {"model": MODEL, "prompt": "after the crash", "duration": 3}
        after = wait_for_task(client, client.post("/api/generate", json=short).json()["data"]["task_id"])
        assert after["status"] == "SUCCESS"
