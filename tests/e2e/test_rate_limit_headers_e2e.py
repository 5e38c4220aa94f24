"""``X-RateLimit-*`` headers on every authenticated /api/ response, through the real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness import LiveServer

pytestmark = pytest.mark.e2e


def quota(response) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


def test_headers_count_down_to_the_429(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(HAPPYHORSE_RATE_LIMIT_STATUS="4/minute;100/hour", HAPPYHORSE_RATE_LIMIT_GENERATE="3/minute")
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
