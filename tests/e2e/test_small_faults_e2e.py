"""Small faults through the real server: malformed /files/ expiries are a 403 and malformed integers in
query strings and form fields a 400, never a 500; a 405 names the methods the path takes."""

from __future__ import annotations

import httpx
import pytest

from harness import LiveServer, wait_for_task

pytestmark = pytest.mark.e2e


def test_malformed_expires_and_allow_header(live_server: LiveServer) -> None:
    client = live_server.client(live_server.create_key(credits=10_000))
    body = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}
    done = wait_for_task(client, client.post("/api/generate", json=body).json()["data"]["task_id"])
    url = httpx.URL(done["response"]["resultUrls"][0])
    signature = url.params["signature"]
    for expires in ("²", "9" * 5000, "-1", "1e10", " 123"):
        response = httpx.get(url.copy_with(params={"expires": expires, "signature": signature}))
        assert response.status_code == 403, (expires[:10], response.status_code)
        assert response.json()["code"] == 403

    # the same for integers in query strings and form fields: ASCII digits only, never a 500
    for bad in ("²", "9" * 5000):
        assert client.get("/api/tasks", params={"limit": bad}).status_code == 400
        listed = client.get("/v1/videos", params={"limit": bad})
        assert listed.status_code == 400 and listed.json()["error"]["param"] == "limit", listed.text[:200]
        for name in ("page_no", "page_size"):
            paged = client.get("/api/v1/tasks", params={name: bad})
            assert paged.status_code == 400 and paged.json()["code"] == "InvalidParameter", paged.text[:200]
        for how in ("json", "data"):
            created = client.post("/v1/videos", **{how: {"model": "sora-2", "prompt": "a horse", "seconds": bad}})
            assert created.status_code == 400 and created.json()["error"]["param"] == "seconds", created.text[:200]

    wrong = client.put("/api/generate", json=body)
    assert wrong.status_code == 405 and wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in wrong.headers["allow"]
    # under /v1/ too, where a catch-all answers unknown paths with OpenAI's 404
    openai_wrong = client.put("/v1/videos", json={})
    assert openai_wrong.status_code == 405, openai_wrong.text
    assert openai_wrong.headers["allow"] == "GET, POST"
    assert openai_wrong.json()["error"]["code"] == "method_not_allowed"
    assert client.patch("/v1/videos/abc").headers["allow"] == "DELETE, GET"
    assert client.put("/v1/nothing-here").status_code == 404
