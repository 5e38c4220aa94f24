"""The real server rendering through a profile with the speed/memory options switched on.

std text_to_video: a TaylorSeer step cache, fp8 weight storage and model offload (a no-op on the
CPU); pro text_to_video: the same model without options. Both go over HTTP and must be valid
videos; the cached, fp8-stored render must stay close to the plain one (same seed, same frame).
"""

from __future__ import annotations

import sys
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
CACHE = (
    r"""{ kind = "taylorseer", cache_interval = 2, disable_cache_before_step = 2, """
    r"""cache_identifiers = ['transformer_blocks\.\d+\.attn1'] }"""
)


def test_options_render_valid_videos_close_to_plain(
    server_factory: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    toml = tmp_path / "models.toml"
    common = 'steps = 6, resolution = "64x32", call_args = { max_sequence_length = 32 }'
    toml.write_text(
        f'[std]\ntext_to_video = {{ path = "{models["ltx2"]}", {common}, cache = {CACHE}, '
        f'quantization = "fp8_storage", offload = "model" }}\n'
        f'[pro]\ntext_to_video = {{ path = "{models["ltx2"]}", {common} }}\n'
    )
    server = server_factory(HAPPYHORSE_ENGINE="diffusers", HAPPYHORSE_MODELS=str(toml), OMP_NUM_THREADS="1")
    videos = {}
    with server.client(server.create_key()) as client:
        ids = {}
        for mode in ("std", "pro"):
            response = client.post(
                "/api/generate",
                json={
                    "model": MODEL,
                    "prompt": "a horse on a beach",
                    "duration": 3,
                    "mode": mode,
                    "sound": False,
                    "seed": 5,
                },
            )
            assert response.status_code == 200, response.text
            ids[mode] = response.json()["data"]["task_id"]
        for mode, task_id in ids.items():
            data = wait_for_task(client, task_id, timeout=240)
            assert data["status"] == "SUCCESS", (data["error_message"], server.log()[-3000:])
            path = tmp_path / f"{mode}.mp4"
            path.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=60).content)
            videos[mode] = decode(path)
    for video in videos.values():
        assert (video["width"], video["height"]) == (64, 32) and len(video["frames"]) == 72
    fast = np.stack(videos["std"]["frames"]).astype(np.float64)
    plain = np.stack(videos["pro"]["frames"]).astype(np.float64)
    psnr = 10 * np.log10(255.0**2 / max(float(((fast - plain) ** 2).mean()), 1e-9))
    assert psnr > 15.0, psnr  # the stated tolerance, as in tests/engines/diffusers/test_diffusers_options.py
