"""The real server with an engine group: ``parallel = { ulysses = 2 }`` on two CPU ranks (gloo).

[std] splits the tiny Wan model across the group's two rank processes; [pro] is the same model
without ``parallel`` (each rank renders it whole, rank 0's file is kept). Over HTTP: the split
render matches the plain one, a cancel stops both ranks and keeps the group, a rank killed
mid-render fails that task (refunded) and the group comes back with fresh ranks for the next one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness import LiveServer, wait_for_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines" / "diffusers"))
import tiny_diffusers
from test_diffusers_e2e import decode

MODEL = "happyhorse-1.0/video"
pytestmark = pytest.mark.e2e


def ranks_of(server: LiveServer) -> dict[str, int]:
    """The server's rank processes by name (engine_process sets it: hh-e<slot>-rank<r>)."""
    children: set[int] = set()
    for thread in Path(f"/proc/{server.process.pid}/task").iterdir():
        children.update(map(int, (thread / "children").read_text().split()))
    found = {}
    for pid in children:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("hh-e0-rank"):
            found[name] = pid
    return found


def wait_for_ranks(server: LiveServer, other_than: dict[str, int] | None = None, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ranks_of(server)
        if len(found) == 2 and (other_than is None or set(found.values()).isdisjoint(other_than.values())):
            return found
        time.sleep(0.2)
    raise AssertionError(f"no fresh group of two ranks: {ranks_of(server)}\n{server.log()[-3000:]}")


def submit(client: httpx.Client, mode: str, duration: int = 3) -> str:
    response = client.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": "a horse on a beach",
            "mode": mode,
            "duration": duration,
            "sound": False,
            "seed": 5,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def wait_rendering(client: httpx.Client, task_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
        assert data["status"] == "IN_PROGRESS", data
        if data.get("progress", 0) > 0:
            return
        time.sleep(0.2)
    raise AssertionError("the task never started rendering")


def test_a_task_split_across_an_engine_group(
    server_factory: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    toml = tmp_path / "models.toml"
    common = 'steps = 2, resolution = "64x32", call_args = { max_sequence_length = 32 }'
    toml.write_text(
        f'[std]\ntext_to_video = {{ path = "{models["wan-ti2v"]}", {common}, '
        f"parallel = {{ ulysses = 2 }} }}\n"
        f'[pro]\ntext_to_video = {{ path = "{models["wan-ti2v"]}", {common} }}\n'
    )
    server = server_factory(HAPPYHORSE_ENGINE="diffusers", HAPPYHORSE_MODELS=str(toml), OMP_NUM_THREADS="1")
    ranks = wait_for_ranks(server)
    with server.client(server.create_key(credits=10_000)) as client:
        # 1. The split render and the plain one: the same video within the stated tolerance.
        ids = {mode: submit(client, mode) for mode in ("std", "pro")}
        videos = {}
        for mode, task_id in ids.items():
            data = wait_for_task(client, task_id, timeout=300)
            assert data["status"] == "SUCCESS", (data["error_message"], server.log()[-3000:])
            path = tmp_path / f"{mode}.mp4"
            path.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=60).content)
            videos[mode] = decode(path)
        for video in videos.values():
            assert (video["width"], video["height"]) == (64, 32) and len(video["frames"]) == 72
        split = np.stack(videos["std"]["frames"]).astype(np.float64)
        plain = np.stack(videos["pro"]["frames"]).astype(np.float64)
        psnr = 10 * np.log10(255.0**2 / max(float(((split - plain) ** 2).mean()), 1e-9))
        assert psnr > 40.0, psnr  # stated tolerance: through H.264, split and plain stay above 40 dB
        print(
            f"split vs plain through the server: PSNR {psnr:.1f} dB, "
            f"max {np.abs(split - plain).max():.0f}, mean {np.abs(split - plain).mean():.4f} levels"
        )
        assert "engine-0 ready: 2 ranks" in server.log()
        for rank in (0, 1):  # [std] really was split: each rank says so at load
            assert f"[std].text_to_video: parallel = {{ ulysses = 2 }}, this process is rank {rank}" in server.log()
        assert not list(server.data_dir.glob("work/*.rank1"))  # rank 1's scratch file is gone

        # 2. A cancel stops both ranks at the same step; the group keeps serving, same processes.
        long = submit(client, "std", duration=15)
        wait_rendering(client, long)
        assert client.post("/api/cancel", json={"task_id": long}).status_code == 200
        cancelled = wait_for_task(client, long, timeout=120)
        assert cancelled["status"] == "FAILED" and cancelled["cancelled"] is True
        after_cancel = wait_for_task(client, submit(client, "std"), timeout=300)
        assert after_cancel["status"] == "SUCCESS", after_cancel["error_message"]
        assert ranks_of(server) == ranks

        # 3. Rank 1 killed mid-render: that task FAILED and refunded, then a fresh group renders.
        doomed = submit(client, "std", duration=15)
        wait_rendering(client, doomed)
        os.kill(ranks["hh-e0-rank1"], signal.SIGKILL)
        crashed = wait_for_task(client, doomed, timeout=120)
        assert crashed["status"] == "FAILED" and "crash" in crashed["error_message"], crashed
        assert crashed["consumed_credits"] == 0
        spent = sum(
            wait_for_task(client, t)["consumed_credits"] for t in (*ids.values(), long, after_cancel["task_id"])
        )
        assert client.get("/api/credits").json()["data"]["balance"] == 10_000 - spent
        wait_for_ranks(server, other_than=ranks)
        last = wait_for_task(client, submit(client, "std"), timeout=300)
        assert last["status"] == "SUCCESS", (last["error_message"], server.log()[-3000:])
    assert server.log().count("engine-0 ready: 2 ranks") == 2
