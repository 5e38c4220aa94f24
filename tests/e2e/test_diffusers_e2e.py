"""The real server with HAPPYHORSE_ENGINE=diffusers over tiny random-weight pipelines.

The pipelines are built in code (tests/engines/diffusers/tiny_diffusers.py), saved with
``save_pretrained`` and named in a models.toml; the engine process loads them through the real
``from_pretrained(local_dir)`` path. Every kind of task goes over HTTP, and the API process is
checked to have no torch in it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from harness import LiveServer, png_bytes, wait_for_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines" / "diffusers"))
import tiny_diffusers

MODEL = "happyhorse-1.0/video"
pytestmark = pytest.mark.e2e


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    toml = tmp_path_factory.mktemp("models") / "models.toml"
    # [pro] text_to_video fails inside the pipeline at render time (a bad call argument), so the
    # failure path runs through the real worker; [std] keeps working on the same engine process.
    toml.write_text(
        tiny_diffusers.models_toml(
            models,
            pro_text_to_video=(
                f'text_to_video = {{ path = "{models["ltx2"]}", steps = 2, resolution = "96x64", '
                f'call_args = {{ max_sequence_length = 32, guidance_rescale = "not a number" }} }}'
            ),
        )
    )
    # One torch thread: on a shared two-core machine spinning OpenMP threads only slow tiny models down.
    return server_factory(HAPPYHORSE_ENGINE="diffusers", HAPPYHORSE_MODELS=str(toml), OMP_NUM_THREADS="1")


def submit(client: httpx.Client, **fields: object) -> str:
    response = client.post(
        "/api/generate", json={"model": MODEL, "prompt": "a horse on a beach", "duration": 3, **fields}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def finish(server: LiveServer, client: httpx.Client, task_id: str, tmp_path: Path) -> tuple[dict, dict]:
    data = wait_for_task(client, task_id, timeout=240)
    assert data["status"] == "SUCCESS", (data["error_message"], server.log()[-3000:])
    path = tmp_path / f"{task_id}.mp4"
    download = httpx.get(data["response"]["resultUrls"][0], timeout=60)
    assert download.status_code == 200, download.text[:500]
    path.write_bytes(download.content)
    return data, decode(path)


def server_lines(server: LiveServer, *needles: str) -> list[str]:
    return [line for line in server.log().splitlines() if any(needle in line for needle in needles)]


def decode(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        info = {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "audio_codec": audio.codec_context.name if audio else None,
            "audio_seconds": float(audio.duration * audio.time_base) if audio and audio.duration else None,
        }
        info["frames"] = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return info


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_every_kind_renders_through_the_real_server(server: LiveServer, tmp_path: Path, image_server) -> None:  # type: ignore[no-untyped-def]
    red = image_server.put("red.png", png_bytes(640, 320, (220, 40, 40), pattern=False))
    blue = image_server.put("blue.png", png_bytes(640, 320, (30, 60, 210), pattern=False))
    dog = [image_server.put(f"dog{i}.png", png_bytes(200, 200, (120, 90, 40))) for i in range(2)]
    with server.client(server.create_key()) as client:
        # Submitted together; the engine process renders them one after another.
        t2v = submit(client, sound=True, seed=42)
        t2v_again = submit(client, sound=True, seed=42)
        t2v_other = submit(client, sound=True, seed=43)
        i2v = submit(client, image_urls=[red], sound=True)  # Wan TI2V + the Stable Audio source
        flf = submit(client, image_urls=[red, blue], sound=False)
        elements = submit(
            client,
            prompt="@rex runs on the sand",
            sound=False,
            elements=[{"name": "rex", "description": "a brown dog", "element_input_urls": dog}],
        )
        shots = [{"prompt": "a door opens", "duration": 1}, {"prompt": "a cat walks in", "duration": 2}]
        multi = submit(client, multi_shots=True, multi_prompt=shots, sound=True, duration=None)

        data, video = finish(server, client, t2v, tmp_path)
        assert (video["width"], video["height"]) == (64, 32) and len(video["frames"]) == 72
        assert video["audio_codec"] == "aac" and video["audio_seconds"] == pytest.approx(3.0, abs=0.1)
        assert data["response"]["has_audio"] is True and data["seed"] == 42

        _, same = finish(server, client, t2v_again, tmp_path)
        _, other = finish(server, client, t2v_other, tmp_path)
        diffs = [round(mean_diff(a, b), 2) for a, b in zip(video["frames"], same["frames"], strict=True)]
        # Said in full when it fails: which attempts rendered the two tasks, and where the frames part.
        assert max(diffs) < 1.0, (diffs, server_lines(server, t2v, t2v_again, "ready (pid", "crash"))
        assert np.mean([mean_diff(a, c) for a, c in zip(video["frames"], other["frames"], strict=True)]) > 2.0

        data, video = finish(server, client, i2v, tmp_path)
        assert data["type"] == "image-to-video" and len(video["frames"]) == 72
        assert mean_diff(video["frames"][0], np.full((32, 64, 3), (220, 40, 40))) < 12  # the first frame is the image
        assert video["audio_codec"] == "aac" and video["audio_seconds"] == pytest.approx(3.0, abs=0.1)

        _, video = finish(server, client, flf, tmp_path)
        assert mean_diff(video["frames"][0], np.full((32, 64, 3), (220, 40, 40))) < 12
        assert mean_diff(video["frames"][-1], np.full((32, 64, 3), (30, 60, 210))) < 12
        assert video["audio_codec"] is None

        _, video = finish(server, client, elements, tmp_path)
        assert len(video["frames"]) == 72 and video["audio_codec"] is None

        _, video = finish(server, client, multi, tmp_path)
        assert len(video["frames"]) == 72
        assert video["audio_codec"] == "aac" and video["audio_seconds"] == pytest.approx(3.0, abs=0.1)

    assert "libtorch" not in Path(f"/proc/{server.process.pid}/maps").read_text()  # the API process


def test_progress_rises_while_rendering(server: LiveServer, tmp_path: Path) -> None:
    with server.client(server.create_key()) as client:
        task_id = submit(client, duration=10, sound=True)  # 240 frames: six passes of LTX-2
        seen: list[int] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
            if data.get("progress") is not None:
                seen.append(int(data["progress"]))
            if data["status"] != "IN_PROGRESS":
                break
            time.sleep(0.1)  # within the key's status limit (20/second)
        assert data["status"] == "SUCCESS", data["error_message"]
    assert seen == sorted(seen) and seen[-1] == 100
    assert any(0 < p < 100 for p in seen), seen


def test_refusals_and_failures(server: LiveServer, image_server) -> None:  # type: ignore[no-untyped-def]
    red = image_server.put("red.png", png_bytes(640, 320, (220, 40, 40)))
    dog = [image_server.put(f"dog{i}.png", png_bytes(200, 200, (120, 90, 40))) for i in range(2)]
    with server.client(server.create_key(credits=10_000)) as client:
        # A kind without a profile: refused at submit, nothing charged.
        response = client.post(
            "/api/generate",
            json={"model": MODEL, "prompt": "a fox", "duration": 3, "mode": "pro", "image_urls": [red], "sound": False},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_REQUEST"
        assert "image-to-video in pro mode" in response.json()["message"]
        # Sound from a model without audio and no audio source: refused, not silently dropped.
        response = client.post(
            "/api/generate",
            json={
                "model": MODEL,
                "prompt": "@rex runs",
                "duration": 3,
                "sound": True,
                "elements": [{"name": "rex", "element_input_urls": dog}],
            },
        )
        assert response.status_code == 400 and "no audio" in response.json()["message"]
        assert client.get("/api/credits").json()["data"]["balance"] == 10_000

        # A pipeline that fails at render: FAILED with a clear message, credits back in full ...
        failing = submit(client, mode="pro", sound=False)
        data = wait_for_task(client, failing, timeout=240)
        assert data["status"] == "FAILED" and data["consumed_credits"] == 0
        assert "video model failed" in data["error_message"] and "Traceback" not in data["error_message"]
        assert client.get("/api/credits").json()["data"]["balance"] == 10_000
        # ... and the same engine process keeps serving.
        working = submit(client, sound=False)
        assert wait_for_task(client, working, timeout=240)["status"] == "SUCCESS"
