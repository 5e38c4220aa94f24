"""Cancel with the diffusers engine: a running task stops at its next denoising step (the pipeline's
step callback), the engine process keeps its loaded model and renders the next task."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import LiveServer, wait_for_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines" / "diffusers"))
import tiny_diffusers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse on a beach", "duration": 3, "sound": False}


def test_cancel_stops_within_a_step(
    server_factory: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    toml = tmp_path_factory.mktemp("models") / "models.toml"
    # many steps: the render lasts long enough to be cancelled in the middle
    toml.write_text(
        tiny_diffusers.models_toml(
            models,
            std_defaults=(
                'steps = 400\nresolution = "64x32"\nframes_per_pass = 41\nguidance = [1.0, 5.0]\n'
                "call_args = { max_sequence_length = 32 }"
            ),
        )
    )
    server = server_factory(HAPPYHORSE_ENGINE="diffusers", HAPPYHORSE_MODELS=str(toml), OMP_NUM_THREADS="1")
    client = server.client(server.create_key(credits=100_000))
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    deadline = time.monotonic() + 240
    while client.get("/api/status", params={"task_id": task_id}).json()["data"]["progress"] < 3:
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.1)
    follow_up = client.post("/api/generate", json={**BODY, "seed": 7}).json()["data"]["task_id"]
    cancelled_at = time.monotonic()
    answer = client.post("/api/cancel", json={"task_id": task_id})
    assert answer.status_code == 200 and answer.json()["data"]["cancelled"] is True
    # the engine is free again within a step or two: the follow-up starts long before 400 steps are done
    while client.get("/api/status", params={"task_id": follow_up}).json()["data"]["progress"] == 0:
        assert time.monotonic() - cancelled_at < 60, server.log()[-2000:]
        time.sleep(0.1)  # 10 polls a second: within the key's status limit (20/second) with room to spare
    stopped_after = time.monotonic() - cancelled_at
    client.post("/api/cancel", json={"task_id": follow_up})  # no need to render 400 steps again
    assert wait_for_task(client, follow_up)["cancelled"] is True
    assert server.log().count(" ready (pid ") == 1, "the engine process was restarted"
    assert stopped_after < 30, stopped_after
