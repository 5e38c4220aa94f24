"""``Idempotency-Key`` on ``POST /api/generate`` and the per-account in-flight cap, through the real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import happyhorse
from happyhorse.pricing import task_cost
from harness import Cluster, LiveServer, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse on a beach", "duration": 3, "sound": False}
COST = task_cost("std", 3, False)


@pytest.fixture
def api_server(shared_api_server: LiveServer) -> LiveServer:
    """One server per deployment for the whole module: every test here makes its own keys."""
    return shared_api_server


def balance(client: httpx.Client) -> int:
    return int(client.get("/api/credits").json()["data"]["balance"])


def post(client: httpx.Client, body: object, key: str | None, raw: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    if raw is not None:
        return client.post("/api/generate", content=raw, headers={**headers, "Content-Type": "application/json"})
    return client.post("/api/generate", json=body, headers=headers)


def test_same_key_same_body_replays_one_task(api_server: LiveServer) -> None:
    info = api_server.create_key_info(credits=1_000)
    client = api_server.client(info["api_key"])
    first = post(client, BODY, "order-42")
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    task_id = first.json()["data"]["task_id"]
    assert balance(client) == 1_000 - COST

    # the same JSON with other whitespace and key order is the same body
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=4)
    again = post(client, None, "order-42", raw=reordered)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["task_id"] == task_id
    assert balance(client) == 1_000 - COST  # no second debit

    # another key of the same account shares the key space: same string, same task
    sibling = api_server.client(api_server.create_key(name="sibling", account=info["account"]))
    assert post(sibling, BODY, "order-42").json()["data"]["task_id"] == task_id

    conflict = post(client, {**BODY, "prompt": "a different horse"}, "order-42")
    assert conflict.status_code == 409
    assert conflict.json()["error_code"] == "IDEMPOTENCY_CONFLICT"
    assert balance(client) == 1_000 - COST

    # keys are per account: another account may use the same string for its own task
    stranger = api_server.client(api_server.create_key(credits=1_000, name="stranger"))
    other = post(stranger, BODY, "order-42")
    assert other.status_code == 200 and other.json()["data"]["task_id"] != task_id
    assert "idempotent-replayed" not in other.headers

    # a replay after the task finished still names it, and shows where it is now
    assert wait_for_task(client, task_id)["status"] == "SUCCESS"
    late = post(client, BODY, "order-42")
    assert late.json()["data"] == {"task_id": task_id, "status": "SUCCESS"}
    assert len(client.get("/api/tasks").json()["data"]["tasks"]) == 1


def test_bad_keys_are_refused(live_server: LiveServer) -> None:
    client = live_server.client(live_server.create_key(credits=1_000))
    for key in ("", "x" * 256, "tab\there", "ключ"):
        headers = {"Idempotency-Key": key.encode()}  # raw bytes: httpx sends them as they are
        response = client.post("/api/generate", json=BODY, headers=headers)
        assert response.status_code == 400, key
        assert response.json()["error_code"] == "INVALID_REQUEST"
        assert "Idempotency-Key" in response.json()["message"]
    assert post(client, BODY, "k" * 255).status_code == 200
    assert balance(client) == 1_000 - COST


def test_ten_concurrent_duplicates_make_one_task(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=1_000)

    def send(_: int) -> httpx.Response:
        with api_server.client(key) as client:
            return post(client, BODY, "burst-1")

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(send, range(10)))
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert len({r.json()["data"]["task_id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    client = api_server.client(key)
    assert balance(client) == 1_000 - COST
    assert len(client.get("/api/tasks").json()["data"]["tasks"]) == 1

    # the SDK: its generate reaches the server, the answer is lost, it retries with the same key
    lossy = LosingFirstAnswer(httpx.HTTPTransport())
    with happyhorse.Client(api_key=key, base_url=api_server.url, http_client=httpx.Client(transport=lossy)) as sdk:
        task = sdk.generate("a horse on a beach", duration=3, sound=False)
    assert lossy.sent >= 2 and len(set(lossy.keys)) == 1  # (more than 2 if the burst left a 429 to wait out)
    assert balance(client) == 1_000 - 2 * COST  # one more task, not two
    listed = [t["task_id"] for t in client.get("/api/tasks").json()["data"]["tasks"]]
    assert len(listed) == 2 and listed[0] == task.task_id


class LosingFirstAnswer(httpx.BaseTransport):
    """Sends every request to the server, but drops the first answer as a broken connection would."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sent = 0
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        self.keys.append(request.headers["Idempotency-Key"])
        response = self.inner.handle_request(request)
        if self.sent == 1:
            response.read()
            raise httpx.RemoteProtocolError("connection dropped before the answer", request=request)
        return response


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_in_flight_cap(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    cap = {"HAPPYHORSE_MAX_ACTIVE_TASKS": "2"}
    server = server_factory(**cap) if mode == "embedded" else cluster_factory(**cap).apis[0]
    client = server.client(server.create_key(credits=10_000))
    long = {**BODY, "mode": "pro", "duration": 15}
    ids = [post(client, long, None).json()["data"]["task_id"] for _ in range(2)]
    before = balance(client)
    refused = post(client, BODY, None)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error_code"] == "RATE_LIMITED"
    assert "2 tasks in progress" in refused.json()["message"]
    assert "retry-after" in refused.headers
    assert balance(client) == before  # nothing debited
    for task_id in ids:
        wait_for_task(client, task_id, timeout=240)
    assert post(client, BODY, None).status_code == 200
