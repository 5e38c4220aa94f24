"""``POST /api/cancel`` through the real server, in both deployments: a queued task ends at once, a
running one stops mid-render while its engine process keeps serving, credits come back once."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

import happyhorse
from happyhorse.pricing import task_cost
from harness import HAPPYHORSE, Cluster, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

LONG = {"model": "happyhorse-1.0/video", "prompt": "a long ride", "mode": "pro", "duration": 15, "sound": True}
SHORT = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


def start(mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]) -> LiveServer:
    return server_factory() if mode == "embedded" else cluster_factory().apis[0]


def status(client: httpx.Client, task_id: str) -> dict:
    return client.get("/api/status", params={"task_id": task_id}).json()["data"]


def balance(client: httpx.Client) -> int:
    return int(client.get("/api/credits").json()["data"]["balance"])


def results(server: LiveServer) -> set[str]:
    if server.mode == "distributed":
        return {key.rsplit("/", 1)[-1] for key in server.cluster.result_keys()}  # type: ignore[attr-defined]
    return {p.name for p in (server.data_dir / "results").glob("*.mp4")}


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_cancel_queued_and_running(mode: str, server_factory, cluster_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(mode, server_factory, cluster_factory)
    client = server.client(server.create_key(credits=100_000))
    running = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
    queued = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
    before_results = results(server)
    deadline = time.monotonic() + 60
    while status(client, running)["progress"] < 5:
        assert time.monotonic() < deadline, "the first task never started"
        time.sleep(0.1)
    assert status(client, queued)["progress"] == 0

    # the queued one ends at once
    answer = client.post("/api/cancel", json={"task_id": queued})
    assert answer.status_code == 200, answer.text
    view = answer.json()["data"]
    assert view["status"] == "FAILED" and view["cancelled"] is True
    assert view["error_message"] == "cancelled by the client" and view["consumed_credits"] == 0
    assert status(client, queued) == view

    # the running one stops mid-render; the engine takes the next task without a restart
    cost = task_cost("pro", 15, True)
    paid = balance(client)
    cancelled_at = time.monotonic()
    answer = client.post("/api/cancel", json={"task_id": running})
    assert answer.status_code == 200 and answer.json()["data"]["cancelled"] is True
    assert balance(client) == paid + cost  # refunded in full
    follow_up = client.post("/api/generate", json=SHORT).json()["data"]["task_id"]
    assert wait_for_task(client, follow_up, timeout=120)["status"] == "SUCCESS"
    assert time.monotonic() - cancelled_at < 30  # not the rest of a 15 s pro render, nor an engine reload
    final = status(client, running)
    assert final["status"] == "FAILED" and final["cancelled"] is True and final["response"] is None
    assert results(server) - before_results == {k for k in results(server) if k.startswith(follow_up)}
    assert balance(client) == 100_000 - task_cost("std", 3, False)  # both refunds, each exactly once
    if mode == "embedded":
        assert server.log().count(" ready (pid ") == 1, "the engine process was restarted"
    assert status(client, follow_up)["cancelled"] is False

    # what cannot be cancelled
    again = client.post("/api/cancel", json={"task_id": running})
    assert again.status_code == 409 and again.json()["error_code"] == "TASK_NOT_CANCELLABLE"
    assert "FAILED" in again.json()["message"]
    done = client.post("/api/cancel", json={"task_id": follow_up})
    assert done.status_code == 409 and "SUCCESS" in done.json()["message"]
    assert balance(client) == 100_000 - task_cost("std", 3, False)  # no second refund


def test_cancel_errors_sdk_and_cli(api_server: LiveServer) -> None:
    live_server = api_server  # both deployments
    key = live_server.create_key(credits=100_000)
    client = live_server.client(key)
    missing = client.post("/api/cancel", json={})
    assert missing.status_code == 400 and missing.json()["error_code"] == "INVALID_REQUEST"
    assert client.post("/api/cancel", content=b"{oops", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/api/cancel", json={"task_id": "n92nothing"}).json()["error_code"] == "TASK_NOT_FOUND"
    mine = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
    stranger = live_server.client(live_server.create_key(name="stranger"))
    assert stranger.post("/api/cancel", json={"task_id": mine}).status_code == 404
    assert live_server.client("hh-nope").post("/api/cancel", json={"task_id": mine}).status_code == 401

    with happyhorse.Client(api_key=key, base_url=live_server.url) as sdk:
        task = sdk.cancel(mine)
        assert task.failed and task.cancelled and task.consumed_credits == 0
        with pytest.raises(happyhorse.Conflict) as raised:
            sdk.cancel(mine)
        assert raised.value.error_code == "TASK_NOT_CANCELLABLE"

    other = client.post("/api/generate", json=LONG).json()["data"]["task_id"]
    env = {**live_server.env, "HAPPYHORSE_API_KEY": key, "HAPPYHORSE_BASE_URL": live_server.url}
    proc = subprocess.run([*HAPPYHORSE, "cancel", other, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cancelled"] is True
    assert client.get("/api/credits").json()["data"]["balance"] == 100_000
