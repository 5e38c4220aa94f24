"""The real server rendering through a profile with the speed/memory options switched on.

std text_to_video: a TaylorSeer step cache, fp8 weight storage and model offload (a no-op on the
CPU); pro text_to_video: the same model without options. Both go over HTTP and must be valid
videos; the cached, fp8-stored render must stay close to the plain one (same seed, same frame).

A second server covers every other option the CPU can honour, one profile each: both compile
modes, the other five cache kinds, sequential offload with VAE tiling and slicing. ``parallel``
renders through the real server in test_diffusers_engine_groups_e2e.py. What a CPU cannot honour
(fp8 compute, group offload, ring attention) is refused at load, tested in tests/engines/diffusers/.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness import LiveServer, png_bytes, wait_for_task

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


# Every other option a CPU can honour, one profile each, on one server (Wan: diffusers registers
# its blocks for every cache kind; LTX-2 takes only TaylorSeer, above). Compilation runs through
# dynamo and AOTAutograd without code generation (HAPPYHORSE_COMPILE_BACKEND=aot_eager): seconds,
# where inductor takes minutes on this CPU (tests/engines/diffusers/test_diffusers_options.py).
MAG = '{ kind = "mag", threshold = 0.5, num_inference_steps = 4, mag_ratios = [1.0, 0.99, 0.97, 0.95] }'
PROFILES = {
    ("std", "text_to_video"): ("wan-ti2v", 'compile = "regional"'),
    ("pro", "text_to_video"): ("wan-ti2v", 'compile = "full"'),
    ("std", "image_to_video"): ("wan-ti2v", 'cache = { kind = "first_block", threshold = 0.2 }'),
    ("pro", "image_to_video"): ("wan-ti2v", 'cache = { kind = "sea" }'),
    ("std", "first_last_frame"): ("wan-flf", f"cache = {MAG}"),
    ("pro", "first_last_frame"): (
        "wan-flf",
        'cache = { kind = "pyramid_attention_broadcast", spatial_attention_block_skip_range = 2 }',
    ),
    ("std", "elements"): ("wan-vace", 'cache = { kind = "faster", is_guidance_distilled = true }, guidance = 1.0'),
    ("pro", "elements"): ("wan-vace", 'offload = "sequential", vae_tiling = true, vae_slicing = true'),
}


def test_every_other_option_renders_a_valid_video(  # type: ignore[no-untyped-def]
    server_factory: Callable[..., LiveServer],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    image_server,
) -> None:
    models = tiny_diffusers.build_all(tmp_path_factory.getbasetemp() / "tiny-diffusers")
    common = 'steps = 4, resolution = "64x32", call_args = { max_sequence_length = 32 }'
    lines = {"std": ["[std]"], "pro": ["[pro]"]}
    for (mode, kind), (model, options) in PROFILES.items():
        lines[mode].append(f'{kind} = {{ path = "{models[model]}", {common}, {options} }}')
    toml = tmp_path / "models.toml"
    toml.write_text("\n".join(lines["std"] + lines["pro"]) + "\n")
    server = server_factory(
        HAPPYHORSE_ENGINE="diffusers",
        HAPPYHORSE_MODELS=str(toml),
        HAPPYHORSE_COMPILE_BACKEND="aot_eager",
        OMP_NUM_THREADS="1",
    )
    red = image_server.put("red.png", png_bytes(640, 320, (220, 40, 40), pattern=False))
    blue = image_server.put("blue.png", png_bytes(640, 320, (30, 60, 210), pattern=False))
    dog = [image_server.put(f"dog{i}.png", png_bytes(200, 200, (120, 90, 40))) for i in range(2)]
    inputs = {
        "text_to_video": {},
        "image_to_video": {"image_urls": [red]},
        "first_last_frame": {"image_urls": [red, blue]},
        "elements": {
            "prompt": "@rex runs on the sand",
            "elements": [{"name": "rex", "description": "a brown dog", "element_input_urls": dog}],
        },
    }
    with server.client(server.create_key(credits=10_000)) as client:
        ids = {}
        for mode, kind in PROFILES:
            body = {"model": MODEL, "prompt": "a horse on a beach", "duration": 3, "mode": mode, "sound": False}
            response = client.post("/api/generate", json={**body, "seed": 5, **inputs[kind]})
            assert response.status_code == 200, response.text
            ids[(mode, kind)] = response.json()["data"]["task_id"]
        for (mode, kind), task_id in ids.items():
            data = wait_for_task(client, task_id, timeout=300)
            assert data["status"] == "SUCCESS", (mode, kind, data["error_message"], server.log()[-3000:])
            path = tmp_path / f"{mode}-{kind}.mp4"
            path.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=60).content)
            video = decode(path)
            frames = np.stack(video["frames"])
            assert (video["width"], video["height"]) == (64, 32) and len(frames) == 72, (mode, kind)
            assert frames.std() > 1.0, (mode, kind)  # a picture, not a flat field
            if kind in ("image_to_video", "first_last_frame"):  # the given image is the first frame
                assert np.abs(frames[0].astype(float) - (220, 40, 40)).mean() < 12, (mode, kind)
    log = server.log()
    for mode, how in (("std", "regional"), ("pro", "full")):  # compiled at start-up, once, not per task
        assert f"compiled [{mode}].text_to_video (compile={how}): warm-up render" in log
    assert "recompiled" not in log  # a 3 s task after the warm-up's short clips reuses the graphs
