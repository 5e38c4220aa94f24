"""A 24-megapixel JPEG as the first frame renders through the real server, and the video's first frame is
that photo fitted to the frame (decoded at reduced scale in the engine; see tests/media/test_image_decode_bounds)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from happyhorse.media.images import decode_image, fit_to_frame
from harness import LiveServer, wait_for_task

pytestmark = pytest.mark.e2e


def big_photo() -> bytes:
    img = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse([2000, 1000, 4000, 3000], fill=(30, 90, 220))
    draw.rectangle([0, 0, 1500, 4000], fill=(220, 40, 40))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return np.asarray(frame.to_ndarray(format="rgb24"))


def test_a_large_jpeg_first_frame_renders(live_server: LiveServer, tmp_path: Path) -> None:
    photo = big_photo()
    with live_server.client(live_server.create_key()) as api:
        uploaded = api.post("/api/upload", files={"file": ("big.jpg", photo, "image/jpeg")})
        assert uploaded.status_code == 200, uploaded.text
        assert (uploaded.json()["data"]["width"], uploaded.json()["data"]["height"]) == (6000, 4000)
        body = {
            "model": "happyhorse-1.0/video",
            "prompt": "the photo comes alive",
            "duration": 3,
            "sound": False,
            "image_urls": [uploaded.json()["data"]["url"]],
        }
        done = wait_for_task(api, api.post("/api/generate", json=body).json()["data"]["task_id"])
        assert done["status"] == "SUCCESS", done["error_message"]
        video = tmp_path / "video.mp4"
        video.write_bytes(api.get(done["response"]["resultUrls"][0]).content)
    shown = first_frame(video).astype(int)
    height, width = shown.shape[:2]
    expected = fit_to_frame(decode_image(photo), width, height).astype(int)  # from the full-size decode
    assert np.abs(shown - expected).mean() < 4  # measured 1.1: H.264 and the preview overlay
