"""``GET /api/status/stream`` (Server-Sent Events) through the real server, in both deployments."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from harness import Cluster, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 15, "mode": "pro", "sound": True}


def read_stream(client: httpx.Client, task_id: str) -> tuple[list[dict], list[float], list[str]]:
    """Every status event's data and arrival time, and the comment lines, until the server closes."""
    events, times, comments = [], [], []
    with client.stream("GET", "/api/status/stream", params={"task_id": task_id}, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                assert kind == "status"
                events.append(json.loads(line[6:]))
                times.append(time.monotonic())
    return events, times, comments


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_stream_follows_a_task_to_its_end(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    if mode == "embedded":
        submit_to = watch_on = server_factory()
    else:  # submitted on one API node, streamed from the other, rendered by a worker
        cluster = cluster_factory(apis=2)
        submit_to, watch_on = cluster.apis
    key = submit_to.create_key(credits=100_000)
    task_id = submit_to.client(key).post("/api/generate", json=BODY).json()["data"]["task_id"]
    opened = time.monotonic()
    events, times, _ = read_stream(watch_on.client(key), task_id)

    assert times[0] - opened < 2  # one at once
    assert events[0]["task_id"] == task_id
    assert events[-1]["status"] == "SUCCESS"  # the terminal one last, then the server closed
    assert all(e["status"] == "IN_PROGRESS" for e in events[:-1])
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and len(set(progress)) >= 3, progress  # it moved, forward only
    gaps = [b - a for a, b, e in zip(times, times[1:], events[1:], strict=False) if e["status"] == "IN_PROGRESS"]
    assert all(gap >= 0.35 for gap in gaps[1:]), gaps  # progress at most every 0.5 s (some slack)
    final = watch_on.client(key).get("/api/status", params={"task_id": task_id}).json()["data"]
    strip = lambda d: {k: v for k, v in d.items() if k != "response"}  # noqa: E731 - signed URLs differ
    assert strip(events[-1]) == strip(final)


def test_stream_of_a_finished_task_and_errors(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory()
    client = server.client(server.create_key(credits=100_000))
    task_id = client.post("/api/generate", json={**BODY, "duration": 3, "mode": "std"}).json()["data"]["task_id"]
    wait_for_task(client, task_id)
    events, _, _ = read_stream(client, task_id)
    assert len(events) == 1 and events[0]["status"] == "SUCCESS"

    for params, status, code in (({}, 400, "INVALID_REQUEST"), ({"task_id": "n92nothing"}, 404, "TASK_NOT_FOUND")):
        response = client.get("/api/status/stream", params=params)
        assert response.status_code == status and response.json()["error_code"] == code
    stranger = server.client(server.create_key(name="stranger"))
    assert stranger.get("/api/status/stream", params={"task_id": task_id}).status_code == 404
    assert server.client("hh-wrong").get("/api/status/stream", params={"task_id": task_id}).status_code == 401


def test_sdk_waits_on_the_stream(api_server: LiveServer) -> None:
    import asyncio
    from datetime import datetime

    import happyhorse

    live_server = api_server  # embedded, and an API node of a cluster (the end pushed from the worker)
    key = live_server.create_key(credits=100_000)
    with happyhorse.Client(api_key=key, base_url=live_server.url) as sdk:
        started = time.monotonic()
        task = sdk.generate_and_wait("a horse on the stream", mode="std", duration=5)  # first_delay 8 s by default
        returned = time.monotonic()
        assert task.succeeded and task.video_url
        finished = datetime.fromisoformat(task.raw["completed_at"])
        lag = datetime.now(finished.tzinfo).timestamp() - finished.timestamp() - (time.monotonic() - returned)
        assert lag < 1.5, lag  # returned within about a second of the render finishing (completed_at has 1 s grain)
        assert returned - started < 8  # it never slept the polling schedule's first 8 s
        snapshots = list(sdk.stream(sdk.generate("again", duration=3, sound=False).task_id))
        assert snapshots[-1].succeeded and all(not s.done for s in snapshots[:-1])

    async def follow() -> list[happyhorse.Task]:
        async with happyhorse.AsyncClient(api_key=key, base_url=live_server.url) as sdk:
            created = await sdk.generate("async", duration=3, sound=False)
            return [t async for t in sdk.stream(created.task_id)]

    seen = asyncio.run(follow())
    assert seen[-1].succeeded


def test_a_quiet_stream_gets_a_comment_every_15_s_and_catches_a_missed_change(
    cluster_factory: Callable[..., Cluster],
) -> None:
    """No worker: the queued task never moves, so its stream stays quiet. After 15 s a comment keeps
    it open, and that moment's one read finds a change this node heard nothing of (written to the
    database without an event, as when its LISTEN connection was reconnecting)."""
    cluster = cluster_factory(workers=0)
    api = cluster.apis[0]
    client = api.client(api.create_key(credits=100_000))
    task_id = client.post("/api/generate", json={**BODY, "duration": 3}).json()["data"]["task_id"]
    arrivals: list[tuple[float, str]] = []
    with client.stream("GET", "/api/status/stream", params={"task_id": task_id}, timeout=40) as response:
        for line in response.iter_lines():
            if line.startswith(("data: ", ":")):
                arrivals.append((time.monotonic(), line))
            if len(arrivals) == 1:  # the first event: now change the task behind the node's back
                cluster.query(
                    "UPDATE tasks SET status = 'CANCELLED', error_message = 'cancelled by the client', "
                    "completed_at = now(), updated_at = now() WHERE id = %s",
                    task_id,
                )
    (opened, first), (commented, comment), (_, last) = arrivals
    assert json.loads(first[6:])["queue_position"] == 1
    assert comment.startswith(":") and 14 <= commented - opened <= 17, arrivals
    final = json.loads(last[6:])
    assert final["status"] == "FAILED" and final["cancelled"] is True  # then the server closed the stream
