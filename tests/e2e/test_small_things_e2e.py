"""Small things a newcomer met (issue 13, item 6), each as the user met it, through the real server."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from harness import wait_for_task

pytestmark = pytest.mark.e2e


def test_a_body_that_is_not_json_says_so_and_where(live_server) -> None:
    with live_server.client(live_server.create_key()) as client:
        response = client.post(
            "/api/generate",
            content=b'{"model": "happyhorse-1.0/video", prompt}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        body = response.json()
        assert body["error_code"] == "INVALID_REQUEST"
        assert body["message"] == "request body is not valid JSON: line 1, column 35"
        # Valid JSON that is not an object keeps the contract's own message.
        response = client.post("/api/generate", json=[1, 2])
        assert response.status_code == 400 and "JSON object" in response.json()["message"]


def test_files_errors_answer_in_one_json_envelope(live_server) -> None:
    with live_server.client(live_server.create_key()) as client:
        task = client.post(
            "/api/generate", json={"model": "happyhorse-1.0/video", "prompt": "a red ball", "duration": 3}
        ).json()["data"]
        data = wait_for_task(client, task["task_id"])
    assert data["status"] == "SUCCESS", data
    url = data["response"]["resultUrls"][0]
    assert httpx.get(url).status_code == 200
    parts = urlsplit(url)
    tampered = url.replace("signature=", "signature=00")
    missing = f"{parts.scheme}://{parts.netloc}/files/no-such-video.mp4?{parts.query}"
    answers = {
        name: httpx.get(target)
        for name, target in {
            "tampered": tampered,
            "expired": url.replace("expires=", "expires=1"),
            "missing": missing,
        }.items()
    }
    assert answers["tampered"].status_code == 403
    assert answers["expired"].status_code == 403
    assert answers["missing"].status_code in (403, 404)
    unsigned = httpx.get(f"{parts.scheme}://{parts.netloc}/files/../../etc/passwd")
    for response in [*answers.values(), unsigned]:
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"code", "message", "error_code", "data"}, body
        assert body["code"] == response.status_code and body["data"] is None
    assert answers["tampered"].json()["error_code"] == "LINK_INVALID"
