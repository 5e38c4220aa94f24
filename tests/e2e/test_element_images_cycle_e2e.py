"""An element sent with several reference images: the synthetic video shows each of them in turn."""

from __future__ import annotations

import av
import httpx
import numpy as np
import pytest

from harness import png_bytes, wait_for_task

pytestmark = pytest.mark.e2e

MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)


def near(frame: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((np.abs(frame.astype(np.int16) - np.array(colour)) < 40).all(axis=2).sum())


def test_every_reference_image_of_an_element_shows(live_server, image_server, tmp_path) -> None:
    urls = [
        image_server.put("a.png", png_bytes(120, 90, MAGENTA, pattern=False)),
        image_server.put("b.png", png_bytes(120, 90, CYAN, pattern=False)),
    ]
    body = {
        "model": "happyhorse-1.0/video",
        "prompt": "@hero crosses the bridge",
        "duration": 3,
        "sound": False,
        "happyhorse_elements": [{"name": "hero", "description": "a cube", "element_input_urls": urls}],
    }
    with live_server.client(live_server.create_key()) as client:
        created = client.post("/api/generate", json=body)
        assert created.status_code == 200, created.text
        data = wait_for_task(client, created.json()["data"]["task_id"], timeout=180)
    assert data["status"] == "SUCCESS", data["error_message"]
    path = tmp_path / "video.mp4"
    path.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=60).content)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    showing = ["magenta" if near(f, MAGENTA) > near(f, CYAN) else "cyan" for f in frames]
    assert showing[0] == "magenta" and max(near(frames[0], MAGENTA), 0) > 500
    assert "cyan" in showing, "the second reference image never showed"
    cyan_frame = frames[showing.index("cyan")]
    assert near(cyan_frame, CYAN) > 500
