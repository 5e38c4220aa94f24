"""What a killed render leaves in the scratch directory (``.{task}-{attempt}.*.part.mp4``,
``{task}-{attempt}.mp4``) is removed when the rendering process starts again: ``happyhorse serve``
(embedded) and ``happyhorse worker`` (distributed). Other files there are left alone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness import LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

LONG = {"model": "happyhorse-1.0/video", "prompt": "a long ride", "duration": 15, "mode": "pro", "sound": True}


def wait_for_part_file(work: Path, task_id: str, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list(work.glob(f".{task_id}-1.*.part.mp4")) if work.is_dir() else []
        if parts:
            return parts[0]
        time.sleep(0.1)
    raise AssertionError(f"no partial render of {task_id} appeared in {work}")


def leftovers(work: Path, task_id: str) -> list[str]:
    return sorted(p.name for p in work.iterdir() if p.name.startswith((f".{task_id}-1.", f"{task_id}-1.")))


def plant(work: Path, task_id: str) -> None:
    """What a kill between the encoder's rename and the upload leaves, and a file that is not ours to delete."""
    (work / f"{task_id}-1.mp4").write_bytes(b"a finished render nobody stored")
    (work / "notes.txt").write_text("an operator's file")


def test_serve_removes_a_killed_renders_files_on_restart(live_server: LiveServer) -> None:
    api = live_server.client(live_server.create_key())
    task_id = api.post("/api/generate", json=LONG).json()["data"]["task_id"]
    work = live_server.data_dir / "work"
    wait_for_part_file(work, task_id)
    os.killpg(live_server.process.pid, signal.SIGKILL)  # the server and its engine process, mid-render
    live_server.process.wait(10)
    plant(work, task_id)
    assert len(leftovers(work, task_id)) == 2

    live_server.restart()
    assert leftovers(work, task_id) == []
    assert (work / "notes.txt").read_text() == "an operator's file"
    assert wait_for_task(api, task_id, timeout=240)["status"] == "SUCCESS"  # rendered again as attempt 2


def test_worker_removes_a_killed_renders_files_on_restart(cluster_factory) -> None:
    cluster = cluster_factory(apis=1, workers=1)
    server, worker = cluster.apis[0], cluster.workers[0]
    api = server.client(server.create_key())
    task_id = api.post("/api/generate", json=LONG).json()["data"]["task_id"]
    work = cluster.root / "worker-0" / "work"
    wait_for_part_file(work, task_id)
    worker.kill()
    plant(work, task_id)
    assert len(leftovers(work, task_id)) == 2

    worker.start()  # the killed worker's registration lingers, so watch the directory instead
    deadline = time.monotonic() + 60
    while leftovers(work, task_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(work, task_id) == [], worker.log()
    assert (work / "notes.txt").read_text() == "an operator's file"
    assert wait_for_task(api, task_id, timeout=240)["status"] == "SUCCESS"
