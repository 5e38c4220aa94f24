"""``X-RateLimit-*`` headers on every authenticated /api/ response, through the real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness import Cluster, LiveServer, png_bytes

pytestmark = pytest.mark.e2e


def quota(response) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_headers_count_down_to_the_429(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster]
) -> None:
    limits = {"HAPPYHORSE_RATE_LIMIT_STATUS": "4/minute;100/hour", "HAPPYHORSE_RATE_LIMIT_GENERATE": "3/minute"}
    server = server_factory(**limits) if mode == "embedded" else cluster_factory(**limits).apis[0]
    client = server.client(server.create_key(credits=10_000))
    body = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3}
    task_id = client.post("/api/generate", json=body).json()["data"]["task_id"]

    seen = []
    for path, params in (
        ("/api/status", {"task_id": task_id}),
        ("/api/credits", {}),
        ("/api/tasks", {}),
        ("/api/status", {"task_id": "n92unknown"}),
    ):
        response = client.get(path, params=params)
        assert response.status_code in (200, 404), response.text
        seen.append(quota(response))
    # the tightest rule (4 a minute) is the one reported, and every endpoint of the rule shares it
    assert [q[:2] for q in seen] == [(4, 3), (4, 2), (4, 1), (4, 0)]
    assert all(0 < q[2] <= 60 for q in seen)

    refused = client.get("/api/credits")
    assert refused.status_code == 429
    assert quota(refused)[:2] == (4, 0)
    assert 1 <= int(refused.headers["retry-after"]) <= 60

    # generate has its own rule; a 400 after the limiter still reports it
    bad = client.post("/api/generate", json={**body, "duration": 99})
    assert bad.status_code == 400 and quota(bad)[:2] == (3, 1)

    # no headers without a valid key: nothing was counted
    assert "x-ratelimit-limit" not in server.client("hh-nope").get("/api/credits").headers

    # the extensions too, errors included: cancel, delete, the stream and upload, for a second key
    second = server.create_key_info(credits=10_000, name="second")
    client = server.client(second["api_key"])
    long = {**body, "mode": "pro", "duration": 15}
    running = client.post("/api/generate", json=long).json()["data"]["task_id"]
    seen = []
    for method, path, kwargs, expected in (
        ("POST", "/api/cancel", {"json": {}}, 400),
        ("DELETE", f"/api/tasks/{running}", {}, 409),
        ("POST", "/api/cancel", {"json": {"task_id": "n92unknown"}}, 404),
        ("POST", "/api/cancel", {"json": {"task_id": running}}, 200),
    ):
        response = client.request(method, path, **kwargs)
        assert response.status_code == expected, (path, response.text)
        seen.append(quota(response)[:2])
    assert seen == [(4, 3), (4, 2), (4, 1), (4, 0)]
    with client.stream("GET", "/api/status/stream", params={"task_id": running}) as refused:
        assert refused.status_code == 429 and quota(refused)[:2] == (4, 0) and "retry-after" in refused.headers
    upload = client.post("/api/upload", files={"file": ("a.png", png_bytes(64, 64, (10, 120, 200)), "image/png")})
    assert upload.status_code == 200 and quota(upload)[:2] == (3, 1)  # uploads count against generate's rule

    stranger = server.client(server.create_key(credits=10_000, name="stranger"))
    with stranger.stream("GET", "/api/status/stream", params={"task_id": running}) as stream:
        assert stream.status_code == 404 and quota(stream)[:2] == (4, 3)  # another account's task
    sibling = server.client(server.create_key(name="sibling", account=second["account"]))  # its own count
    with sibling.stream("GET", "/api/status/stream", params={"task_id": running}) as stream:
        assert stream.status_code == 200 and quota(stream)[:2] == (4, 3)
        assert stream.headers["content-type"].startswith("text/event-stream")
