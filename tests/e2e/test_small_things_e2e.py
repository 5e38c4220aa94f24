"""Small things a newcomer met (issue 13, item 6), each as the user met it, through the real server."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest

from happyhorse.config import Settings
from happyhorse.storage.local import LocalResultStore
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
        key = parts.path.rsplit("/", 1)[1]
        # A link signed with the server's own key whose time is up: expired, not tampered.
        past = int(time.time()) - 60
        store = LocalResultStore(
            live_server.data_dir / "results", Settings(data_dir=live_server.data_dir).signing_key, 1
        )
        expired = f"{parts.scheme}://{parts.netloc}/files/{key}?expires={past}&signature={store.signature(key, past)}"
        answers = {
            "tampered": httpx.get(url.replace("signature=", "signature=00")),
            "expired": httpx.get(expired),
            "unsafe name": httpx.get(f"{parts.scheme}://{parts.netloc}/files/..%2F..%2Fetc%2Fpasswd"),
            "unknown upload": httpx.get(f"{parts.scheme}://{parts.netloc}/uploads/nothing-here.png"),
        }
        assert client.delete(f"/api/tasks/{task['task_id']}").status_code == 200
        answers["deleted"] = httpx.get(url)  # correctly signed, its file gone
    assert {name: r.status_code for name, r in answers.items()} == {
        "tampered": 403,
        "expired": 403,
        "unsafe name": 404,
        "unknown upload": 404,
        "deleted": 404,
    }
    for name, response in answers.items():
        assert response.headers["content-type"].startswith("application/json"), name
        body = response.json()
        assert set(body) == {"code", "message", "error_code", "data"}, (name, body)
        assert body["code"] == response.status_code and body["data"] is None and body["message"], (name, body)
    assert answers["tampered"].json()["error_code"] == answers["expired"].json()["error_code"] == "LINK_INVALID"
    assert {answers[n].json()["error_code"] for n in ("unsafe name", "unknown upload", "deleted")} == {"NOT_FOUND"}
