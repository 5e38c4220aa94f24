"""The SDK sends one fresh Idempotency-Key per generate call and keeps it across that call's retries."""

from __future__ import annotations

import httpx

import happyhorse

OK = {"code": 200, "message": "success", "data": {"task_id": "n92abc", "status": "IN_PROGRESS"}}


def test_one_key_per_call_kept_across_retries() -> None:
    seen: list[str] = []
    fail_next = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        if fail_next[0]:
            fail_next[0] = False
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=OK)

    client = happyhorse.Client(
        api_key="k", base_url="http://sdk.test", transport=httpx.MockTransport(handler), sleep=lambda _s: None
    )
    client.generate("a horse")
    assert len(seen) == 2 and seen[0] == seen[1]  # the retry carries the same key
    client.generate("a horse")
    assert len(seen) == 3 and seen[2] != seen[0]  # a new call, a new key
    assert len(seen[0]) == 36  # a UUID
