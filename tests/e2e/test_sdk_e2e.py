"""The SDK against the real server (a subprocess with the synthetic engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from happyhorse import (
    AsyncClient,
    Client,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    RateLimited,
    Shot,
    TaskFailed,
    TaskNotFound,
    WaitTimeout,
)

pytestmark = pytest.mark.e2e

# Tiny polling intervals: the synthetic engine renders a short clip in seconds.
FAST: dict[str, Any] = {"first_delay": 0.2, "interval": 0.3, "max_interval": 0.5, "timeout": 180}


def probe(path: Path) -> dict[str, Any]:
    """Decode an MP4 fully with PyAV: video length, codec, size and audio length."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        info: dict[str, Any] = {
            "codec": video.codec_context.name,
            "fps": float(video.average_rate or 0),
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "has_audio": bool(container.streams.audio),
        }
    info["duration"] = frames / info["fps"]
    if info["has_audio"]:
        with av.open(str(path)) as container:
            audio = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio))
            info["audio_duration"] = samples / audio.codec_context.sample_rate
    return info


def test_generate_and_wait_then_download_decodes(live_server: Any, tmp_path: Path) -> None:
    with Client(live_server.create_key(credits=1000), live_server.url) as client:
        task = client.generate_and_wait("A horse: galloping on a beach", duration=3, aspect_ratio="16:9", **FAST)
        assert task.status == "SUCCESS" and task.task_id.startswith("n92")
        assert task.consumed_credits == 180  # std, sound: 60/s x 3 s
        assert task.type == "text-to-video" and task.created_at is not None
        assert task.request["prompt"] == "A horse: galloping on a beach"
        assert task.video_url and task.error_message is None
        assert client.credits() == 1000 - 180

        path = client.download(task, tmp_path / "horse.mp4")
        assert path == tmp_path / "horse.mp4"
        assert client.download(task, tmp_path) == tmp_path / f"{task.task_id}.mp4"

    info = probe(path)
    assert info["codec"] == "h264" and info["fps"] == pytest.approx(24)
    assert abs(info["duration"] - 3) <= 1 / 24 + 1e-6
    assert info["width"] / info["height"] == pytest.approx(16 / 9, rel=0.02)
    assert info["has_audio"] and info["audio_duration"] >= 3 - 1 / 24


def test_multi_shot(live_server: Any, tmp_path: Path) -> None:
    with Client(live_server.create_key(credits=1000), live_server.url) as client:
        task = client.generate_and_wait(
            "shared: context",
            multi_prompt=[Shot("Title: a horse runs", 2), {"prompt": "it stops", "duration": 2}],
            sound=False,
            aspect_ratio="9:16",
            **FAST,
        )
        assert task.consumed_credits == 160  # std, no sound: 40/s x 4 s
        assert task.request["multi_shots"] is True
        assert [s["duration"] for s in task.request["multi_prompt"]] == [2, 2]
        path = client.download(task, tmp_path / "shots.mp4")
    info = probe(path)
    assert abs(info["duration"] - 4) <= 1 / 24 + 1e-6
    assert not info["has_audio"]
    assert info["width"] / info["height"] == pytest.approx(9 / 16, rel=0.02)


def test_typed_errors(live_server: Any) -> None:
    with Client("hh_not_a_real_key", live_server.url) as bad:
        with pytest.raises(InvalidApiKey) as auth:
            bad.generate("a horse")
        assert auth.value.status == 401 and auth.value.error_code == "INVALID_API_KEY"

    with Client(live_server.create_key(credits=100), live_server.url) as client:
        with pytest.raises(InvalidRequest) as duration:
            client.generate("a horse", duration=99)
        assert duration.value.status == 400 and duration.value.error_code == "INVALID_DURATION"
        assert "duration" in duration.value.message

        with pytest.raises(InsufficientCredits) as broke:
            client.generate("a horse", duration=5)  # 300 credits > 100
        assert broke.value.status == 402 and broke.value.error_code == "INSUFFICIENT_CREDITS"

        with pytest.raises(TaskNotFound) as missing:
            client.status("n92doesnotexist0000")
        assert missing.value.status == 404 and missing.value.error_code == "TASK_NOT_FOUND"
        assert client.credits() == 100  # nothing was charged


def test_failed_task_raises_task_failed_and_refunds(live_server: Any, image_server: Any) -> None:
    not_an_image = image_server.put("not-an-image.png", b"this is text, not a picture", "image/png")
    missing = image_server.url("missing.png")  # 404
    with Client(live_server.create_key(credits=1000), live_server.url) as client:
        for url in (not_an_image, missing):
            with pytest.raises(TaskFailed) as info:
                client.generate_and_wait("a horse", duration=3, image_urls=[url], **FAST)
            task = info.value.task
            assert task.status == "FAILED" and task.error_message
            assert task.consumed_credits == 0 and task.video_url is None
            assert task.task_id in str(info.value)
        assert client.credits() == 1000  # both refunded


def test_wait_timeout_carries_the_task_id(live_server: Any) -> None:
    with Client(live_server.create_key(credits=10_000), live_server.url) as client:
        task = client.generate("a long pro render", mode="pro", duration=15)
        with pytest.raises(WaitTimeout) as info:
            client.wait(task.task_id, first_delay=0.1, interval=0.1, max_interval=0.1, timeout=0.5)
        assert info.value.task_id == task.task_id
        assert info.value.task is not None and info.value.task.status == "IN_PROGRESS"
        assert client.status(task.task_id).task_id == task.task_id  # still there to check later


def test_rate_limits_are_honoured_not_fatal(server_factory: Any) -> None:
    server = server_factory(HAPPYHORSE_RATE_LIMIT_STATUS="2/second", HAPPYHORSE_RATE_LIMIT_GENERATE="1/second")
    key = server.create_key(credits=1000)
    seen: list[tuple[str, int]] = []
    http = httpx.Client(event_hooks={"response": [lambda r: seen.append((r.request.method, r.status_code))]})
    with http, Client(key, server.url, http_client=http) as client, Client(key, server.url, max_retries=0) as strict:
        # Three generates at once under 1/second: at least one meets 429 and is retried after Retry-After.
        # (Two are not enough: a sliding-window counter lets the second through when the two straddle
        # the window's edge, as the previous window's weight then rounds down to none.)
        first = client.generate("one", duration=3, sound=False)
        second = client.generate("two", duration=3, sound=False)
        third = client.generate("three", duration=3, sound=False)
        assert len({first.task_id, second.task_id, third.task_id}) == 3

        with pytest.raises(RateLimited) as info:
            for _ in range(10):
                strict.status(first.task_id)  # the 3rd check within a second is over the limit
        assert info.value.status == 429 and info.value.error_code == "RATE_LIMITED"
        assert info.value.retry_after is not None and info.value.retry_after >= 1

        # Polling far faster than allowed: 429s slow the wait down instead of failing it.
        for task in (first, second, third):
            done = client.wait(task.task_id, first_delay=0, interval=0.05, max_interval=0.05, timeout=180)
            assert done.status == "SUCCESS"
        assert client.credits() == 1000 - 3 * 120
    assert ("POST", 429) in seen and ("GET", 429) in seen  # the limits really were hit


async def test_async_client(live_server: Any, tmp_path: Path) -> None:
    key = live_server.create_key(credits=1000)
    async with AsyncClient(key, live_server.url) as client:
        task = await client.generate_and_wait("an async horse", duration=3, sound=False, **FAST)
        assert task.status == "SUCCESS" and task.consumed_credits == 120
        assert (await client.status(task.task_id)).video_url == task.video_url
        assert await client.credits() == 1000 - 120
        path = await client.download(task, tmp_path / "async.mp4")
        with pytest.raises(TaskNotFound):
            await client.status("n92doesnotexist0000")
    info = probe(path)
    assert abs(info["duration"] - 3) <= 1 / 24 + 1e-6 and not info["has_audio"]
