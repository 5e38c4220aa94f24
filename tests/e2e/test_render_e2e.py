"""Real videos end to end: submit over HTTP, wait, download, decode the MP4 and check what a user sees."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from harness import LiveServer, png_bytes, wait_for_task

MODEL = "happyhorse-1.0/video"


@pytest.fixture
def api_server(shared_api_server: LiveServer) -> LiveServer:
    """One server per deployment for the whole module: every test here makes its own keys."""
    return shared_api_server


def render(server: LiveServer, tmp_path: Path, **fields: object) -> tuple[dict, Path]:
    request = {"model": MODEL, "prompt": "a lighthouse on a cliff at dusk", "duration": 3, **fields}
    with server.client(server.create_key()) as client:
        created = client.post("/api/generate", json=request)
        assert created.status_code == 200, created.text
        data = wait_for_task(client, created.json()["data"]["task_id"], timeout=180)
    assert data["status"] == "SUCCESS", data["error_message"]
    path = tmp_path / f"{data['task_id']}.mp4"
    path.write_bytes(httpx.get(data["response"]["resultUrls"][0], timeout=60).content)
    return data, path


def decode(path: Path) -> dict:
    """Frames (RGB arrays), fps, and the audio stream's codec and duration."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "fps": float(video.average_rate),
            "codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
        }
        audio = container.streams.audio[0] if container.streams.audio else None
        info["audio_codec"] = audio.codec_context.name if audio else None
        info["audio_seconds"] = float(audio.duration * audio.time_base) if audio and audio.duration else None
        info["frames"] = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return info


def close_to(frame: np.ndarray, expected: np.ndarray, tolerance: float = 8.0) -> bool:
    return float(np.abs(frame.astype(np.int16) - expected.astype(np.int16)).mean()) < tolerance


def fitted(width: int, height: int, color: tuple[int, int, int], source: tuple[int, int]) -> np.ndarray:
    """What the contract says the first frame must be: the image scaled to cover, centre-cropped."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png_bytes(*source, color)))
    scale = max(width / img.width, height / img.height)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return np.asarray(img.crop((left, top, left + width, top + height)))


def test_text_to_video_with_sound(api_server: LiveServer, tmp_path: Path) -> None:
    data, path = render(api_server, tmp_path, mode="std", duration=3, sound=True)
    video = decode(path)
    assert (video["width"], video["height"]) == (1280, 720)
    assert video["codec"] == "h264" and video["fps"] == pytest.approx(24)
    assert abs(len(video["frames"]) - 72) <= 1
    assert video["audio_codec"] == "aac"
    assert video["audio_seconds"] == pytest.approx(3.0, abs=0.1)
    assert data["response"]["has_audio"] is True
    assert data["type"] == "text-to-video"


def test_pro_without_sound_is_1080p_and_silent(api_server: LiveServer, tmp_path: Path) -> None:
    _, path = render(api_server, tmp_path, mode="pro", duration=3, sound=False, aspect_ratio="1:1")
    video = decode(path)
    assert video["width"] == video["height"] and video["width"] * video["height"] > 1280 * 720
    assert video["audio_codec"] is None


def test_image_to_video_first_and_last_frame(api_server: LiveServer, tmp_path: Path, image_server) -> None:  # type: ignore[no-untyped-def]
    # portrait images: the output follows the first image's shape (9:16)
    first = image_server.put("first.png", png_bytes(540, 960, (220, 40, 40)))
    last = image_server.put("last.png", png_bytes(540, 960, (30, 60, 210)))
    data, path = render(api_server, tmp_path, image_urls=[first, last], sound=False)
    video = decode(path)
    assert data["type"] == "image-to-video"
    assert (video["width"], video["height"]) == (720, 1280)
    assert close_to(video["frames"][0], fitted(720, 1280, (220, 40, 40), (540, 960)))
    assert close_to(video["frames"][-1], fitted(720, 1280, (30, 60, 210), (540, 960)))
    assert not close_to(video["frames"][len(video["frames"]) // 2], video["frames"][0], 2.0)


def test_image_is_fitted_by_cover_and_centre_crop(api_server: LiveServer, tmp_path: Path, image_server) -> None:  # type: ignore[no-untyped-def]
    url = image_server.put("wide.png", png_bytes(1600, 800, (20, 160, 60)))  # 2:1 → 16:9 output, cropped sides
    _, path = render(api_server, tmp_path, image_urls=[url], sound=False)
    video = decode(path)
    assert (video["width"], video["height"]) == (1280, 720)
    assert close_to(video["frames"][0], fitted(1280, 720, (20, 160, 60), (1600, 800)))


def test_multi_shot_with_sound_in_one_file(api_server: LiveServer, tmp_path: Path) -> None:
    shots = [
        {"prompt": "a door opens", "duration": 1},
        {"prompt": "a cat walks in", "duration": 2},
        {"prompt": "the cat sleeps by the fire", "duration": 1},
    ]
    data, path = render(api_server, tmp_path, multi_shots=True, sound=True, multi_prompt=shots, duration=None)
    video = decode(path)
    assert abs(len(video["frames"]) - 96) <= 1
    assert video["audio_codec"] == "aac" and video["audio_seconds"] == pytest.approx(4.0, abs=0.1)
    frames = video["frames"]
    # a cut between shots changes the scene much more than motion inside a shot does
    cut = float(np.abs(frames[24].astype(np.int16) - frames[23].astype(np.int16)).mean())
    within = float(np.abs(frames[12].astype(np.int16) - frames[11].astype(np.int16)).mean())
    assert cut > 3 * within
    assert data["request"]["multi_prompt"] == shots


def test_same_seed_same_video(api_server: LiveServer, tmp_path: Path) -> None:
    _, a = render(api_server, tmp_path, seed=1234, sound=False)
    _, b = render(api_server, tmp_path, seed=1234, sound=False)
    _, c = render(api_server, tmp_path, seed=1234, sound=False, prompt="a completely different scene")
    fa, fb, fc = decode(a)["frames"], decode(b)["frames"], decode(c)["frames"]
    assert all(np.array_equal(x, y) for x, y in zip(fa[::12], fb[::12], strict=True))
    assert not close_to(fa[10], fc[10], 4.0)
