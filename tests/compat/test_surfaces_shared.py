# mypy: disable-error-code="arg-type"
# (the openai SDK types seconds as "4"|"8"|"12"; this server takes "3".."15")
"""What every surface shares, driven through the real ``dashscope`` and ``openai`` SDKs: one task list
(``/api/tasks``, DashScope's ``GET /api/v1/tasks``), the account's webhooks and the status stream for a task
from any surface, and the SSRF guard on every URL either surface takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import VideoSynthesis
from openai import BadRequestError, OpenAI

from harness import ImageServer, LiveServer, WebhookReceiver, wait_for_task

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]


def status_events(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    """The ``/api/status/stream`` events of one task, until the server closes the stream at its end."""
    events = []
    with client.stream("GET", "/api/status/stream", params={"task_id": task_id}, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_webhooks_stream_and_lists_cover_every_surface(api_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = WebhookReceiver()
    try:
        info = api_server.create_key_info(credits=100_000)
        key, account = info["api_key"], info["account"]
        api_server.cli("webhooks", "add", account, receiver.url)
        secret = api_server.cli("webhooks", "secret", account).stdout.strip()
        client = api_server.client(key)
        monkeypatch.setattr(dashscope, "base_http_api_url", f"{api_server.url}/api/v1")

        native = client.post(
            "/api/generate", json={"model": "happyhorse-1.0/video", "prompt": "a", "duration": 3, "sound": False}
        ).json()["data"]["task_id"]
        ds = VideoSynthesis.async_call(
            model="happyhorse-1.1-t2v", prompt="b", api_key=key, duration=3, resolution="720P", audio=False
        )
        assert ds.status_code == 200, ds
        openai = OpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=0)
        video = openai.videos.create(prompt="c", seconds="3", size="1280x720")

        # The status stream follows a task from either compat surface to its end.
        for task_id in (ds.output.task_id, video.id):
            events = status_events(client, task_id)
            assert events and events[-1]["status"] == "SUCCESS" and events[-1]["task_id"] == task_id
        wait_for_task(client, native)

        # One signed task.succeeded per task, whatever surface made it.
        receiver.wait_for(3)
        delivered = receiver.events(secret)
        assert sorted((e["type"], e["data"]["task_id"]) for e in delivered) == sorted(
            ("task.succeeded", t) for t in (native, ds.output.task_id, video.id)
        )

        # DashScope's task list (1.x and 2.x) shows them all, with the model each would be on DashScope.
        listed = VideoSynthesis.list(api_key=key, page_size=10)
        assert listed.status_code == 200, listed
        rows = {row["task_id"]: row for row in listed.output["data"]}
        assert set(rows) == {native, ds.output.task_id, video.id} and listed.output["total"] == 3
        assert rows[ds.output.task_id]["model_name"] == "happyhorse-1.1-t2v"
        assert rows[native]["model_name"] == "happyhorse-1.0-t2v"
        assert {row["status"] for row in rows.values()} == {"SUCCEEDED"}
        first_page = VideoSynthesis.list(api_key=key, page_no=1, page_size=2).output
        second_page = VideoSynthesis.list(api_key=key, page_no=2, page_size=2).output
        assert (first_page["total_page"], len(first_page["data"]), len(second_page["data"])) == (2, 2, 1)
        assert [r["task_id"] for r in first_page["data"] + second_page["data"]] == [video.id, ds.output.task_id, native]
        assert VideoSynthesis.list(api_key=key, status="FAILED").output["total"] == 0
        bad = VideoSynthesis.list(api_key=key, status="DONE")
        assert bad.status_code == 400 and bad.code == "InvalidParameter"
        jobs = dashscope.Client(api_key=key, base_url=f"{api_server.url}/api/v1").videos.jobs.list(page_size=10)
        assert jobs.total == 3 and {(j.task_id, j.status) for j in jobs.tasks} == {
            (t, "SUCCEEDED") for t in (native, ds.output.task_id, video.id)
        }
        # another account sees none of them
        assert VideoSynthesis.list(api_key=api_server.create_key(name="other")).output["total"] == 0
    finally:
        receiver.close()


def test_failed_tasks_on_both_surfaces_report_refund_and_notify(
    live_server: LiveServer, image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render that fails (its first frame is gone): DashScope says FAILED with ``output.code``/``message``,
    OpenAI ``failed`` with ``error``; both are refunded and the account's webhook hears ``task.failed``."""
    receiver = WebhookReceiver()
    try:
        info = live_server.create_key_info(credits=100_000)
        key, account = info["api_key"], info["account"]
        live_server.cli("webhooks", "add", account, receiver.url)
        secret = live_server.cli("webhooks", "secret", account).stdout.strip()
        client = live_server.client(key)
        start = client.get("/api/credits").json()["data"]["balance"]
        missing = image_server.url("gone.png")
        monkeypatch.setattr(dashscope, "base_http_api_url", f"{live_server.url}/api/v1")
        ds = VideoSynthesis.async_call(
            model="happyhorse-1.0-i2v", prompt="it runs", api_key=key, img_url=missing, duration=3, resolution="720P"
        )
        assert ds.status_code == 200, ds
        openai = OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
        video = openai.videos.create(
            prompt="it runs", seconds="3", size="1280x720", extra_body={"input_reference": {"image_url": missing}}
        )
        assert client.get("/api/credits").json()["data"]["balance"] < start  # debited at submit

        failed = VideoSynthesis.wait(ds, api_key=key)
        assert failed.status_code == 200 and failed.output.task_status == "FAILED", failed
        assert failed.output.code == "InvalidParameter" and "gone.png" in failed.output.message
        assert not failed.output.video_url
        assert failed.usage.video_count == 0
        polled = openai.videos.poll(video.id, poll_interval_ms=200)
        assert polled.status == "failed" and polled.error is not None and polled.error.code == "generation_failed"
        assert polled.error.message
        assert client.get("/api/credits").json()["data"]["balance"] == start  # both refunded

        receiver.wait_for(2)
        assert sorted((e["type"], e["data"]["task_id"]) for e in receiver.events(secret)) == sorted(
            ("task.failed", t) for t in (ds.output.task_id, video.id)
        )
        assert VideoSynthesis.list(api_key=key, status="FAILED").output["total"] == 2
    finally:
        receiver.close()


def test_ssrf_guard_on_every_url_of_both_surfaces(
    server_factory: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false", HAPPYHORSE_RATE_LIMIT_GENERATE="1000/second")
    key = server.create_key(credits=100_000)
    client = server.client(key)
    start = client.get("/api/credits").json()["data"]["balance"]
    public = "https://example.com/first.png"
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{server.url}/api/v1")
    openai = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    for private in ("http://127.0.0.1:9/x.png", "http://10.0.0.7/x.png", "http://169.254.169.254/latest/x.png"):
        for kwargs in (
            {"model": "happyhorse-1.0-i2v", "img_url": private},
            {"model": "happyhorse-1.0-i2v", "first_frame_url": private},
            {"model": "happyhorse-1.0-i2v", "first_frame_url": public, "last_frame_url": private},
            {"model": "happyhorse-1.0-i2v", "media": [{"type": "first_frame", "url": private}]},
            {
                "model": "happyhorse-1.0-r2v",
                "prompt": "[Image 1] runs",
                "media": [{"type": "reference_image", "url": private}],
            },
        ):
            refused = VideoSynthesis.async_call(**{"prompt": "x", "api_key": key, **kwargs})
            assert refused.status_code == 400 and refused.code == "InvalidParameter", (kwargs, refused)
            assert "points at" in refused.message, refused.message  # the guard said no, not another rule
        with pytest.raises(BadRequestError) as bad:
            openai.videos.create(prompt="x", seconds="3", extra_body={"input_reference": {"image_url": private}})
        assert bad.value.param == "input_reference"
    assert client.get("/api/credits").json()["data"]["balance"] == start  # nothing refused was charged
    assert client.get("/api/tasks").json()["data"]["tasks"] == []
