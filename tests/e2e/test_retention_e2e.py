"""Result retention and ``DELETE /api/tasks/{id}`` through the real server, in both deployments:
the video goes, the task stays SUCCESS with ``expired: true``, and no file or object is left."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest

from harness import Cluster, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


def start(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster], **env: str
) -> LiveServer:
    return server_factory(**env) if mode == "embedded" else cluster_factory(**env).apis[0]


def stored_results(server: LiveServer) -> set[str]:
    """Every result file (embedded) or S3 object (distributed) the deployment holds."""
    if server.mode == "distributed":
        return set(server.cluster.result_keys())  # type: ignore[attr-defined]
    return {p.name for p in (server.data_dir / "results").glob("*") if not p.name.startswith(".")}


def status(client: httpx.Client, task_id: str) -> dict:
    return client.get("/api/status", params={"task_id": task_id}).json()["data"]


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_results_expire_after_the_retention(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    server = start(
        mode,
        server_factory,
        cluster_factory,
        HAPPYHORSE_RESULT_RETENTION="4",
        HAPPYHORSE_RETENTION_SWEEP_INTERVAL="0.5",
    )
    client = server.client(server.create_key(credits=10_000))
    before = stored_results(server)
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    done = wait_for_task(client, task_id)
    assert done["status"] == "SUCCESS" and done["expired"] is False
    assert parse(done["expires_at"]) == parse(done["completed_at"]) + timedelta(seconds=4)
    url = done["response"]["resultUrls"][0]
    assert httpx.get(url).status_code == 200
    assert len(stored_results(server) - before) == 1

    deadline = time.monotonic() + 30
    while status(client, task_id)["response"] is not None:  # polled all along: the memo must notice
        assert time.monotonic() < deadline, "the result was not deleted"
        time.sleep(0.3)
    gone = status(client, task_id)
    assert gone["status"] == "SUCCESS" and gone["expired"] is True and gone["expires_at"] is None
    assert gone["consumed_credits"] == done["consumed_credits"]  # expiry refunds nothing
    assert stored_results(server) == before
    assert httpx.get(url).status_code in (403, 404)
    listed = client.get("/api/tasks").json()["data"]["tasks"][0]
    assert listed["task_id"] == task_id and listed["expired"] is True and listed["response"] is None


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_delete_now(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    server = start(mode, server_factory, cluster_factory)
    client = server.client(server.create_key(credits=10_000))
    before = stored_results(server)
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    done = wait_for_task(client, task_id)
    # the default keeps videos seven days
    assert parse(done["expires_at"]) == parse(done["completed_at"]) + timedelta(days=7)
    long = client.post("/api/generate", json={**BODY, "mode": "pro", "duration": 15}).json()["data"]["task_id"]

    deleted = client.delete(f"/api/tasks/{task_id}")
    assert deleted.status_code == 200, deleted.text
    view = deleted.json()["data"]
    assert view["response"] is None and view["expired"] is True and view["status"] == "SUCCESS"
    assert {k: v for k, v in status(client, task_id).items() if k != "updated_at"} == {
        k: v for k, v in view.items() if k != "updated_at"
    }
    assert client.delete(f"/api/tasks/{task_id}").status_code == 200  # again: nothing changes

    busy = client.delete(f"/api/tasks/{long}")
    assert busy.status_code == 409 and busy.json()["error_code"] == "TASK_NOT_FINISHED"
    assert client.delete("/api/tasks/n92nosuchtask").json()["error_code"] == "TASK_NOT_FOUND"
    stranger = server.client(server.create_key(name="stranger"))
    assert stranger.delete(f"/api/tasks/{long}").status_code == 404

    wait_for_task(client, long, timeout=240)
    assert client.delete(f"/api/tasks/{long}").status_code == 200
    assert stored_results(server) == before  # nothing left behind


def test_zero_keeps_results_forever(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(HAPPYHORSE_RESULT_RETENTION="0")
    client = server.client(server.create_key(credits=10_000))
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    done = wait_for_task(client, task_id)
    assert done["expires_at"] is None and done["expired"] is False


def test_sdk_and_cli_delete(live_server: LiveServer) -> None:
    import subprocess

    import happyhorse
    from harness import HAPPYHORSE

    key = live_server.create_key(credits=10_000)
    with happyhorse.Client(api_key=key, base_url=live_server.url) as sdk:
        first = sdk.generate("a horse", duration=3, sound=False)
        second = sdk.generate("a horse", duration=3, sound=False)
        done = sdk.wait(first.task_id, first_delay=0.2, interval=0.2, max_interval=0.5)
        assert done.expires_at is not None and not done.expired
        gone = sdk.delete_result(first.task_id)
        assert gone.expired and gone.video_url is None and gone.succeeded
        sdk.wait(second.task_id, first_delay=0.2, interval=0.2, max_interval=0.5)
    env = {**live_server.env, "HAPPYHORSE_API_KEY": key, "HAPPYHORSE_BASE_URL": live_server.url}
    proc = subprocess.run([*HAPPYHORSE, "delete", second.task_id], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with happyhorse.Client(api_key=key, base_url=live_server.url) as sdk:
        assert sdk.status(second.task_id).expired


def test_uploads_go_once_no_task_needs_them(server_factory: Callable[..., LiveServer]) -> None:
    from harness import png_bytes

    server = server_factory(HAPPYHORSE_RESULT_RETENTION="3", HAPPYHORSE_RETENTION_SWEEP_INTERVAL="0.5")
    client = server.client(server.create_key(credits=100_000))
    uploads = server.data_dir / "uploads"
    before = set(uploads.iterdir())

    def upload(color: tuple[int, int, int]) -> str:
        answer = client.post("/api/upload", files={"file": ("a.png", png_bytes(320, 180, color), "image/png")})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["data"]["url"])

    used, unused = upload((200, 30, 30)), upload((30, 200, 30))
    used_name, unused_name = used.split("?")[0].rsplit("/", 1)[1], unused.split("?")[0].rsplit("/", 1)[1]
    blocker = client.post("/api/generate", json={**BODY, "mode": "pro", "duration": 15, "sound": True})
    waiting = client.post("/api/generate", json={**BODY, "image_urls": [used]}).json()["data"]["task_id"]
    deadline = time.monotonic() + 20
    while (uploads / unused_name).exists():
        assert time.monotonic() < deadline, "the unused upload outlived the retention"
        time.sleep(0.2)
    if client.get("/api/status", params={"task_id": waiting}).json()["data"]["status"] == "IN_PROGRESS":
        assert (uploads / used_name).exists()  # still needed by a task in progress
    assert wait_for_task(client, waiting, timeout=180)["status"] == "SUCCESS"  # it could read its image
    wait_for_task(client, blocker.json()["data"]["task_id"], timeout=180)
    deadline = time.monotonic() + 20
    while set(uploads.iterdir()) != before:
        assert time.monotonic() < deadline, f"uploads left behind: {set(uploads.iterdir()) - before}"
        time.sleep(0.2)
