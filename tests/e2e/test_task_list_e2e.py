"""``GET /api/tasks`` through the real server, in both deployments: paging, filters, isolation."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

import happyhorse
from harness import HAPPYHORSE, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


@pytest.fixture
def api_server(shared_api_server: LiveServer) -> LiveServer:
    """One server per deployment for the whole module: every test here makes its own keys."""
    return shared_api_server


def submit(client, **extra) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/api/generate", json={**BODY, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def follow(client, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/tasks", params=query).json()
        assert body["code"] == 200, body
        seen += body["data"]["tasks"]
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            return seen


def without_urls(task: dict) -> dict:
    response = task.get("response")
    return {**task, "response": {k: v for k, v in response.items() if k != "resultUrls"} if response else None}


def test_pages_newest_first_across_keys_of_one_account(api_server: LiveServer) -> None:
    first = api_server.create_key_info(credits=10_000, name="one")
    second_key = api_server.create_key(name="two", account=first["account"])
    a, b = api_server.client(first["api_key"]), api_server.client(second_key)
    ids = [submit(a, seed=1), submit(b, seed=2), submit(a, seed=3), submit(b, seed=4), submit(a, seed=5)]
    for task_id in ids:
        wait_for_task(a, task_id)

    listed = follow(a, limit=2)
    assert [t["task_id"] for t in listed] == list(reversed(ids))
    # each item is what /api/status shows for that task, result URLs signed the same way
    for item in listed:
        status = a.get("/api/status", params={"task_id": item["task_id"]}).json()["data"]
        assert without_urls(item) == without_urls(status)
        assert item["response"]["resultUrls"][0].startswith("http")
        assert a.get(item["response"]["resultUrls"][0]).status_code == 200

    # another account sees none of them
    stranger = api_server.client(api_server.create_key(name="stranger"))
    assert stranger.get("/api/tasks").json()["data"] == {"tasks": [], "next_cursor": None}


def test_cursor_is_stable_while_new_tasks_arrive(api_server: LiveServer) -> None:
    client = api_server.client(api_server.create_key(credits=10_000))
    older = [submit(client) for _ in range(4)]
    page = client.get("/api/tasks", params={"limit": 2}).json()["data"]
    assert [t["task_id"] for t in page["tasks"]] == older[:1:-1]
    newer = submit(client)  # arrives between pages
    rest = client.get("/api/tasks", params={"limit": 2, "cursor": page["next_cursor"]}).json()["data"]
    assert [t["task_id"] for t in rest["tasks"]] == older[1::-1]
    assert rest["next_cursor"] is None
    assert follow(client)[0]["task_id"] == newer


def test_status_filter_and_bad_queries(api_server: LiveServer, image_server) -> None:  # type: ignore[no-untyped-def]
    client = api_server.client(api_server.create_key(credits=10_000))
    good = submit(client)
    bad = submit(client, image_urls=[image_server.url("missing.png")])  # unfetchable: fails, refunded
    assert wait_for_task(client, good)["status"] == "SUCCESS"
    assert wait_for_task(client, bad)["status"] == "FAILED"
    assert [t["task_id"] for t in follow(client, status="SUCCESS")] == [good]
    assert [t["task_id"] for t in follow(client, status="FAILED")] == [bad]
    assert follow(client, status="IN_PROGRESS") == []
    assert len(follow(client)) == 2

    for query in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"status": "DONE"}, {"cursor": "not-a-cursor"}):
        response = client.get("/api/tasks", params=query)
        assert response.status_code == 400, query
        assert response.json()["error_code"] == "INVALID_REQUEST"
    assert api_server.client("hh-wrong").get("/api/tasks").status_code == 401


def test_sdk_and_cli_follow_the_cursors(live_server: LiveServer) -> None:
    key = live_server.create_key(credits=10_000)
    client = live_server.client(key)
    ids = [submit(client, seed=i) for i in range(3)]
    with happyhorse.Client(api_key=key, base_url=live_server.url) as sdk:
        assert [t.task_id for t in sdk.list_tasks(limit=1)] == ids[::-1]  # three pages of one
        assert [t.task_id for t in sdk.list_tasks(status="FAILED")] == []

    async def listed() -> list[str]:
        async with happyhorse.AsyncClient(api_key=key, base_url=live_server.url) as sdk:
            return [t.task_id async for t in sdk.list_tasks(limit=2)]

    assert asyncio.run(listed()) == ids[::-1]

    env = {"HAPPYHORSE_API_KEY": key, "HAPPYHORSE_BASE_URL": live_server.url}
    proc = subprocess.run(
        [*HAPPYHORSE, "tasks", "--limit", "2", "--json"],
        env={**live_server.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [t["task_id"] for t in json.loads(proc.stdout)] == ids[:0:-1]
    proc = subprocess.run(
        [*HAPPYHORSE, "tasks"], env={**live_server.env, **env}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and all(task_id in proc.stdout for task_id in ids), proc.stdout
