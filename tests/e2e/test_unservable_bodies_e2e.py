"""What status cannot serve is never accepted (issue 15, item 2), through the real server.

- ``NaN``, ``Infinity`` (or ``1e999``, which overflows to it), a lone surrogate, a NUL or nesting deeper
  than 64 levels anywhere in a body is a 400 at submit on every surface that takes JSON
  (``/api/generate``, ``/v1/videos``, DashScope's route), in each one's error shape; nothing is stored
  or charged. (Before: ``"multi_prompt": [NaN]`` with
  ``multi_shots`` false was rendered and charged and its status a 500 forever; a lone surrogate in the
  prompt, or a very deep body, was a 500.)
- A known field is held to its limits whatever the mode: ``multi_prompt`` sent with ``multi_shots``
  false (stored and echoed, never rendered) and elements alike.
- ``/api/status`` answers from reads alone: while another process holds SQLite's write lock, a key's
  first poll (whose last-used time is due) answers at once instead of waiting out the busy timeout.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import httpx
import pytest

from harness import LiveServer, sqlite_write_lock, wait_for_task

pytestmark = pytest.mark.e2e

MODEL = "happyhorse-1.0/video"
DASHSCOPE = "/api/v1/services/aigc/video-generation/video-synthesis"
DEEP = "[" * 65 + "]" * 65  # one level past the limit
VERY_DEEP = "[" * 100_000 + "]" * 100_000  # deep enough to exhaust a recursive decoder

# (what is wrong, the raw JSON fragment) placed in a field of an otherwise valid body
FAULTS = [
    ("NaN in an unused multi_prompt", '"multi_prompt": [NaN], "multi_shots": false'),
    ("1e999 (inf) in an unused shot", '"multi_prompt": [{"prompt": "a", "duration": 3, "x": 1e999}]'),
    ("5000 digits", '"extra": ' + "9" * 5000),
    ("a NUL in the prompt", '"negative_prompt": "a \\u0000 b"'),
    ("Infinity", '"cfg_scale": Infinity'),
    ("-Infinity in an unknown field", '"extra": -Infinity'),
    ("a lone surrogate in the prompt", '"negative_prompt": "a \\ud800 b"'),
    ("a lone surrogate in a key", '"\\udfff": 1'),
    ("65 levels", f'"extra": {DEEP}'),
    ("100 000 levels", f'"extra": {VERY_DEEP}'),
]


def native(fragment: str) -> bytes:
    return f'{{"model": "{MODEL}", "prompt": "a horse", "duration": 3, {fragment}}}'.encode()


def openai(fragment: str) -> bytes:
    return f'{{"model": "sora-2", "prompt": "a horse", "seconds": "4", {fragment}}}'.encode()


def dashscope(fragment: str) -> bytes:
    return f'{{"model": "happyhorse-1.0-t2v", "input": {{"prompt": "a horse"}}, "parameters": {{{fragment}}}}}'.encode()


def balance(api: httpx.Client) -> int:
    return int(api.get("/api/credits").json()["data"]["balance"])


def test_bodies_status_could_not_serve_are_refused_on_every_surface(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(HAPPYHORSE_RATE_LIMIT_GENERATE="1000/second")  # 22 submits in a burst
    api = server.client(server.create_key(credits=10_000))
    json_header = {"Content-Type": "application/json"}
    start = balance(api)
    for what, fragment in FAULTS:
        refused = api.post("/api/generate", content=native(fragment), headers=json_header)
        assert refused.status_code == 400, (what, refused.status_code, refused.text[:300])
        assert refused.json()["error_code"] == "INVALID_REQUEST", (what, refused.json())

        video = api.post("/v1/videos", content=openai(fragment), headers=json_header)
        assert video.status_code == 400, (what, video.status_code, video.text[:300])
        assert video.json()["error"]["type"] == "invalid_request_error", (what, video.json())

        task = api.post(DASHSCOPE, content=dashscope(fragment), headers={**json_header, "X-DashScope-Async": "enable"})
        assert task.status_code == 400, (what, task.status_code, task.text[:300])
        assert task.json()["code"] == "InvalidParameter", (what, task.json())
    # the lone surrogate in the very prompt, on the native surface
    prompt = api.post("/api/generate", content=b'{"model": "' + MODEL.encode() + b'", "prompt": "\\ud800"}')
    assert prompt.status_code == 400 and prompt.json()["error_code"] == "INVALID_REQUEST", prompt.text

    # a form (urlencoded or multipart) cannot carry NaN or a surrogate, but it can carry a NUL
    fields = {"model": "sora-2", "prompt": "a \x00 horse", "seconds": "4"}
    multipart = {name: (None, value) for name, value in fields.items()}
    for form in (api.post("/v1/videos", data=fields), api.post("/v1/videos", files=multipart)):
        assert form.status_code == 400 and "NUL" in form.json()["error"]["message"], form.text[:300]

    # nothing was stored, nothing charged
    assert api.get("/api/tasks").json()["data"]["tasks"] == []
    assert balance(api) == start

    # what is fine still is: 64 levels in an unknown field, a proper surrogate pair; status serves them
    fine = native(f'"extra": {"[" * 63 + "]" * 63}, "negative_prompt": "\\ud83d\\ude00"')
    accepted = api.post("/api/generate", content=fine, headers=json_header)
    assert accepted.status_code == 200, accepted.text
    done = wait_for_task(api, accepted.json()["data"]["task_id"])
    assert done["status"] == "SUCCESS" and done["request"]["negative_prompt"] == "\U0001f600", done
    api.close()


def test_known_fields_are_held_to_their_limits_whatever_the_mode(live_server: LiveServer) -> None:
    api = live_server.client(live_server.create_key(credits=10_000))
    body = {"model": MODEL, "prompt": "a horse", "duration": 3, "sound": False, "multi_shots": False}
    start = balance(api)
    too_many = [{"prompt": "a shot", "duration": 3}] * 6
    too_long = [{"prompt": "x" * 501, "duration": 3}]
    huge = [{"prompt": "x" * 200_000, "duration": 3}]  # under the body cap: the shot limit decides
    for shots, code in ((too_many, "INVALID_REQUEST"), (too_long, "INVALID_PROMPT"), (huge, "INVALID_PROMPT")):
        refused = api.post("/api/generate", json={**body, "multi_prompt": shots})
        assert refused.status_code == 400 and refused.json()["error_code"] == code, refused.text[:300]
    element = {"name": "cat", "element_input_urls": ["https://example.com/a.png", "https://example.com/b.png"]}
    multi = {"model": MODEL, "multi_shots": True, "sound": False, "multi_prompt": [{"prompt": "@cat", "duration": 3}]}
    for elements in ([element] * 4, [{**element, "element_input_urls": ["https://example.com/a.png"] * 5}]):
        refused = api.post("/api/generate", json={**multi, "happyhorse_elements": elements})
        assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_REQUEST", refused.text[:300]
    assert balance(api) == start and api.get("/api/tasks").json()["data"]["tasks"] == []

    # within the limits an unused multi_prompt is accepted, not rendered, and echoed as sent
    shots = [{"prompt": "x" * 500, "duration": 3}] * 5
    accepted = api.post("/api/generate", json={**body, "multi_prompt": shots})
    assert accepted.status_code == 200, accepted.text
    done = wait_for_task(api, accepted.json()["data"]["task_id"])
    assert done["status"] == "SUCCESS" and done["request"]["multi_prompt"] == shots
    api.close()


def test_status_answers_while_the_database_refuses_writes(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(HAPPYHORSE_DB_BUSY_TIMEOUT="20")  # a write would wait this long for the lock
    info = server.create_key_info(credits=10_000)
    api = server.client(info["api_key"])
    submitted = api.post("/api/generate", json={"model": MODEL, "prompt": "a horse", "duration": 3})
    done = wait_for_task(api, submitted.json()["data"]["task_id"])
    # a second key of the account, never used: its first poll is due to record its last use
    fresh = server.client(server.create_key(account=info["account"]), timeout=5)

    with sqlite_write_lock(server.data_dir / "happyhorse.db"):
        for client in (fresh, api):
            started = time.monotonic()
            polled = client.get("/api/status", params={"task_id": done["task_id"]})
            assert polled.status_code == 200, polled.text
            assert polled.json()["data"]["status"] == "SUCCESS"
            assert time.monotonic() - started < 3, "the poll waited for a write"
    # once the lock is free the last use is recorded after all
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        keys = json.loads(server.cli("keys", "list", "--json").stdout)
        if all(k["last_used_at"] for k in keys if k["account"] == info["account"]):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"last use never recorded: {keys}")
    fresh.close()
    api.close()


def test_a_nul_in_the_url_is_a_400_on_every_surface(api_server: LiveServer) -> None:
    """PostgreSQL's text cannot hold NUL: a task id or cursor with one made each lookup a 500 in
    distributed mode. Now the URL is refused before any route asks the database."""
    with api_server.client(api_server.create_key(credits=1_000)) as api:
        for method, path, params in [
            ("GET", "/api/status", {"task_id": "n92\x00"}),
            ("GET", "/api/status/stream", {"task_id": "n92\x00"}),
            ("GET", "/api/tasks", {"cursor": "n92\x00"}),
            ("DELETE", "/api/tasks/n92%00", None),
        ]:
            answer = api.request(method, path, params=params)
            assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
            assert answer.json()["error_code"] == "INVALID_REQUEST" and "NUL" in answer.json()["message"]
        for method, path in [("GET", "/v1/videos/n92%00"), ("GET", "/v1/videos/n92%00/content")]:
            answer = api.request(method, path)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", answer.text[:200]
        assert api.get("/v1/videos", params={"after": "n92\x00"}).status_code == 400
        for method, path in [("GET", "/api/v1/tasks/n92%00"), ("POST", "/api/v1/tasks/n92%00/cancel")]:
            answer = api.request(method, path)
            assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter", answer.text[:200]
        # and the server is fine afterwards
        assert api.get("/api/status", params={"task_id": "n92nothing"}).status_code == 404

    # a sign-in form's e-mail with a NUL is a 400 (dashboard/forms.py), not a 500
    with httpx.Client(base_url=api_server.url) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/dashboard/login").text)
        assert token is not None
        form = {"email": "lee\x00@example.com", "password": "guess", "csrf_token": token.group(1)}
        assert browser.post("/dashboard/login", data=form).status_code == 400
