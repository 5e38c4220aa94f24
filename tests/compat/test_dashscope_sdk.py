"""The real ``dashscope`` SDK (1.x VideoSynthesis and the 2.x ``client.videos``), unmodified, against the real
server in both deployments: submit, fetch, wait, download, cancel, errors as the SDK reports them, credits."""

from __future__ import annotations

import io
import time
from typing import Any

import av
import dashscope
import httpx
import numpy as np
import pytest
from dashscope import VideoSynthesis

from happyhorse.pricing import task_cost
from harness import LiveServer

pytestmark = pytest.mark.e2e


def balance(client: httpx.Client) -> int:
    return int(client.get("/api/credits").json()["data"]["balance"])


@pytest.fixture
def ds_server(api_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{api_server.url}/api/v1")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", f"{api_server.url}/api/v1")
    return api_server


def test_v1_sdk_submit_fetch_wait_cancel_errors(ds_server: LiveServer) -> None:
    key = ds_server.create_key(credits=100_000)
    client = ds_server.client(key)
    start = balance(client)

    # a long task first, so the next one queues behind it (one engine process)
    long = VideoSynthesis.async_call(
        model="happyhorse-1.0-t2v", prompt="a long ride", api_key=key, duration=15, resolution="1080P", audio=True
    )
    assert long.status_code == 200, long
    queued = VideoSynthesis.async_call(
        model="happyhorse-1.0-t2v", prompt="waits", api_key=key, duration=15, resolution="1080P"
    )
    assert queued.status_code == 200 and queued.output.task_status == "PENDING", queued
    cancelled = VideoSynthesis.cancel(queued, api_key=key)
    assert cancelled.status_code == 200, cancelled
    after_cancel = VideoSynthesis.fetch(queued, api_key=key)
    assert after_cancel.output.task_status == "CANCELED"
    # a second cancel is refused: the task is no longer PENDING
    again = VideoSynthesis.cancel(queued, api_key=key)
    assert again.status_code == 400 and again.code == "UnsupportedOperation", again
    assert balance(client) == start - task_cost("pro", 15, True)  # the cancelled one refunded

    short = VideoSynthesis.async_call(
        model="happyhorse-1.0-t2v",
        prompt="a horse",
        api_key=key,
        duration=3,
        resolution="720P",
        ratio="9:16",
        audio=False,
        seed=7,
    )
    assert short.status_code == 200, short
    assert short.request_id and short.output.task_id
    seen = VideoSynthesis.fetch(short.output.task_id, api_key=key)
    assert seen.status_code == 200 and seen.output.task_status in ("PENDING", "RUNNING")
    done = VideoSynthesis.wait(short, api_key=key)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED", done
    assert done.output.submit_time and done.output.end_time
    assert done.usage.video_count == 1 and done.usage.duration == 3
    assert (done.usage.video_duration, done.usage.video_ratio) == (3, "720*1280")  # the SDK's own names
    video = httpx.get(done.output.video_url, timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert balance(client) == start - task_cost("pro", 15, True) - task_cost("std", 3, False)

    # the same task on the native surface
    native = client.get("/api/status", params={"task_id": short.output.task_id}).json()["data"]
    assert native["status"] == "SUCCESS" and native["request"]["aspect_ratio"] == "9:16"
    assert native["request"]["mode"] == "std" and native["seed"] == 7
    listed = client.get("/api/tasks").json()["data"]
    ids = [t["task_id"] for t in (listed["tasks"] if isinstance(listed, dict) else listed)]
    assert short.output.task_id in ids and long.output.task_id in ids

    # errors as the SDK reports them
    bad_key = VideoSynthesis.async_call(model="happyhorse-1.0-t2v", prompt="x", api_key="sk-nope")
    assert bad_key.status_code == 401 and bad_key.code == "InvalidApiKey"
    bad_ratio = VideoSynthesis.async_call(model="happyhorse-1.0-t2v", prompt="x", api_key=key, ratio="4:3")
    assert bad_ratio.status_code == 400 and bad_ratio.code == "InvalidParameter" and "ratio" in bad_ratio.message
    bad_model = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="x", api_key=key)
    assert bad_model.status_code == 400 and bad_model.code == "InvalidParameter"
    poor = ds_server.create_key(credits=1)
    arrears = VideoSynthesis.async_call(model="happyhorse-1.0-t2v", prompt="x", api_key=poor)
    assert arrears.status_code == 400 and arrears.code == "Arrearage"
    unknown = VideoSynthesis.fetch("no-such-task", api_key=key)
    assert unknown.output.task_status == "UNKNOWN"
    other = VideoSynthesis.fetch(short.output.task_id, api_key=ds_server.create_key(name="other"))
    assert other.output.task_status == "UNKNOWN"

    # without the async header: DashScope's refusal, in its shape
    sync = httpx.post(
        f"{ds_server.url}/api/v1/services/aigc/video-generation/video-synthesis",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}},
    )
    assert sync.status_code == 403 and sync.json()["code"] == "AccessDenied" and sync.json()["request_id"]
    junk = httpx.post(
        f"{ds_server.url}/api/v1/services/aigc/video-generation/video-synthesis",
        headers={"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"},
        content=b"{nope",
    )
    assert junk.status_code == 400 and junk.json()["code"] == "InvalidParameter"


def first_frame_of(url: str) -> np.ndarray:
    video = httpx.get(url, timeout=30)
    assert video.status_code == 200, video.text
    with av.open(io.BytesIO(video.content)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24").astype(np.int16)


def test_watermark_true_draws_a_visible_mark(ds_server: LiveServer) -> None:
    key = ds_server.create_key(credits=100_000)
    common: dict[str, Any] = {
        "model": "happyhorse-1.0-t2v",
        "prompt": "a horse in a field",
        "api_key": key,
        "duration": 3,
        "resolution": "720P",
        "audio": False,
        "seed": 11,
    }
    plain = VideoSynthesis.async_call(**common)
    marked = VideoSynthesis.async_call(**common, watermark=True)
    assert plain.status_code == 200 and marked.status_code == 200, (plain, marked)
    frames = []
    for submitted in (plain, marked):
        done = VideoSynthesis.wait(submitted, api_key=key)
        assert done.output.task_status == "SUCCEEDED", done
        frames.append(first_frame_of(done.output.video_url))
    without, with_mark = frames
    height, width = without.shape[:2]
    corner = np.abs(with_mark - without)[height * 7 // 8 :, width * 3 // 4 :].mean()
    elsewhere = np.abs(with_mark - without)[: height // 2, : width // 2].mean()
    assert corner > 8, f"no visible mark in the bottom-right corner (mean change {corner:.2f})"
    assert elsewhere < 1.5, f"the mark spilled over the picture (mean change {elsewhere:.2f})"


def test_v2_client_videos(ds_server: LiveServer) -> None:
    key = ds_server.create_key(credits=100_000)
    client = dashscope.Client(api_key=key, base_url=f"{ds_server.url}/api/v1")
    job = client.videos.jobs.create(
        model="happyhorse-1.0-t2v", prompt="a horse", duration=3, resolution="720P", parameters={"audio": False}
    )
    assert job.task_id and job.status in ("PENDING", "RUNNING")
    final = client.videos.jobs.wait(job, poll_interval=0.5, max_interval=1, timeout=120)
    assert final.succeeded and final.video_url
    assert httpx.get(final.video_url, timeout=30).content[4:8] == b"ftyp"
    snapshot = client.videos.jobs.fetch(job.task_id)
    assert snapshot.status == "SUCCEEDED" and snapshot.usage is not None

    long = client.videos.jobs.create(model="happyhorse-1.0-t2v", prompt="long", duration=15)
    queued = client.videos.jobs.create(model="happyhorse-1.0-t2v", prompt="waits", duration=15)
    deadline = time.monotonic() + 30
    while client.videos.jobs.fetch(long.task_id).status == "PENDING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.videos.jobs.cancel(queued.task_id)
    assert client.videos.jobs.fetch(queued.task_id).status == "CANCELED"
    with pytest.raises(dashscope.v2.errors.DashScopeError) as raised:  # type: ignore[attr-defined]
        client.videos.jobs.create(model="happyhorse-1.0-t2v", prompt="x", ratio="4:3")
    assert getattr(raised.value, "code", None) == "InvalidParameter"
    # the other refusals as the 2.x client raises them: its class for the status, the wire code kept
    errors = dashscope.v2.errors  # type: ignore[attr-defined]
    stranger = dashscope.Client(api_key="hh_not_a_key", base_url=f"{ds_server.url}/api/v1")
    with pytest.raises(errors.AuthenticationError) as denied:
        stranger.videos.jobs.create(model="happyhorse-1.0-t2v", prompt="x")
    assert (denied.value.code, denied.value.status_code) == ("InvalidApiKey", 401)
    poor = dashscope.Client(api_key=ds_server.create_key(credits=1), base_url=f"{ds_server.url}/api/v1")
    with pytest.raises(errors.DashScopeError) as arrears:
        poor.videos.jobs.create(model="happyhorse-1.0-t2v", prompt="x")
    assert (arrears.value.code, arrears.value.status_code) == ("Arrearage", 400)
    unknown = client.videos.jobs.fetch("no-such-task")  # UNKNOWN, not an error: the task is not this key's
    assert unknown.status == "UNKNOWN" and unknown.finished


def test_i2v_r2v_mapping_and_malformed_bodies(server_factory, image_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from harness import png_bytes

    # many refused submits in a row: a generate limit they cannot reach
    live_server = server_factory(HAPPYHORSE_RATE_LIMIT_GENERATE="1000/second")
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{live_server.url}/api/v1")
    key = live_server.create_key(credits=100_000)
    client = live_server.client(key)
    first = image_server.put("first.png", png_bytes(540, 960, (220, 40, 40)))
    last = image_server.put("last.png", png_bytes(540, 960, (30, 60, 210)))
    i2v = VideoSynthesis.async_call(
        model="happyhorse-1.0-i2v",
        prompt="it runs",
        api_key=key,
        duration=3,
        resolution="720P",
        first_frame_url=first,
        last_frame_url=last,
        audio=False,
    )
    assert i2v.status_code == 200, i2v
    request = client.get("/api/status", params={"task_id": i2v.output.task_id}).json()["data"]["request"]
    assert request["image_urls"] == [first, last]
    r2v = VideoSynthesis.async_call(
        model="happyhorse-1.1-r2v",
        prompt="[Image 1] meets [Image 2]",
        api_key=key,
        duration=3,
        resolution="720P",
        audio=False,
        media=[{"type": "reference_image", "url": first}, {"type": "reference_image", "url": last}],
    )
    assert r2v.status_code == 200, r2v
    request = client.get("/api/status", params={"task_id": r2v.output.task_id}).json()["data"]["request"]
    assert request["prompt"] == "@image1 meets @image2"
    assert [e["name"] for e in request["elements"]] == ["image1", "image2"]
    assert VideoSynthesis.wait(r2v, api_key=key).output.task_status == "SUCCEEDED"
    bad_ref = VideoSynthesis.async_call(
        model="happyhorse-1.0-r2v", prompt="[Image 3]", api_key=key, media=[{"type": "reference_image", "url": first}]
    )
    assert bad_ref.status_code == 400 and "[Image 3]" in bad_ref.message
    no_frame = VideoSynthesis.async_call(model="happyhorse-1.0-i2v", prompt="x", api_key=key)
    assert no_frame.status_code == 400 and no_frame.code == "InvalidParameter"

    url = f"{live_server.url}/api/v1/services/aigc/video-generation/video-synthesis"
    headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}
    body: Any
    for body in (
        [],
        "x",
        3,
        None,
        {"model": "happyhorse-1.0-t2v"},
        {"model": ["happyhorse-1.0-t2v"], "input": {"prompt": "x"}},
        {"model": {"name": "happyhorse-1.0-t2v"}, "input": {"prompt": "x"}},
        {"model": "happyhorse-1.0-t2v", "input": []},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": 5}},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x", "media": [3]}},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": {"duration": "5"}},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": {"seed": "abc"}},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": {"watermark": "yes"}},
        {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": []},
    ):
        answer = httpx.post(url, headers=headers, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["code"] == "InvalidParameter" and answer.json()["request_id"], answer.text


def test_throttling_and_idempotency(server_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_RATE_LIMIT_GENERATE="3/minute")
    key = server.create_key(credits=100_000)
    client = server.client(key)
    start = balance(client)
    url = f"{server.url}/api/v1/services/aigc/video-generation/video-synthesis"
    headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable", "Idempotency-Key": "once"}
    body = {
        "model": "happyhorse-1.0-t2v",
        "input": {"prompt": "a horse"},
        "parameters": {"duration": 3, "resolution": "720P", "audio": False},
    }
    one = httpx.post(url, headers=headers, json=body).json()
    two = httpx.post(url, headers=headers, json=body).json()
    assert one["output"]["task_id"] == two["output"]["task_id"]
    assert balance(client) == start - task_cost("std", 3, False)  # charged once
    httpx.post(url, headers=headers, json=body)
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{server.url}/api/v1")
    throttled = VideoSynthesis.async_call(model="happyhorse-1.0-t2v", prompt="x", api_key=key)
    assert throttled.status_code == 429 and throttled.code == "Throttling", throttled
