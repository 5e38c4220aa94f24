"""The wire contract, rule by rule, against the real server over HTTP (both deployment modes)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness import LiveServer, png_bytes, wait_for_task

MODEL = "happyhorse-1.0/video"
TASK_ID = re.compile(r"^n92[a-z0-9]{12,}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def api_server(shared_api_server: LiveServer) -> LiveServer:
    """One server per deployment for the whole module: every test here makes its own keys."""
    return shared_api_server


def body(**fields: object) -> dict[str, object]:
    return {"model": MODEL, "prompt": "a red fox in fresh snow", "duration": 3, **fields}


def assert_error(response: httpx.Response, status: int, error_code: str) -> dict:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == status
    assert payload["error_code"] == error_code
    assert payload["data"] is None
    assert isinstance(payload["message"], str) and payload["message"]
    assert "Traceback" not in payload["message"]
    return payload


def balance(client: httpx.Client) -> int:
    return int(client.get("/api/credits").json()["data"]["balance"])


# --- envelope, auth --------------------------------------------------------------------------------


def test_generate_returns_task_id_in_envelope(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key()) as client:
        payload = client.post("/api/generate", json=body()).json()
    assert payload["code"] == 200 and payload["message"] == "success"
    assert payload["data"]["status"] == "IN_PROGRESS"
    assert TASK_ID.match(payload["data"]["task_id"])


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer hh_not_a_real_key"])
def test_bad_or_missing_key_is_401(api_server: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [("POST", "/api/generate"), ("GET", "/api/status?task_id=n92x"), ("GET", "/api/credits")]:
        response = httpx.request(method, api_server.url + path, headers=headers, json=body())
        assert_error(response, 401, "INVALID_API_KEY")


def test_revoked_key_is_401(api_server: LiveServer) -> None:
    info = api_server.create_key_info(credits=1000)
    with api_server.client(info["api_key"]) as client:
        assert client.get("/api/credits").status_code == 200
        api_server.cli("keys", "revoke", info["key_id"])
        assert_error(client.get("/api/credits"), 401, "INVALID_API_KEY")


def test_auth_is_checked_before_the_body(api_server: LiveServer) -> None:
    response = httpx.post(
        api_server.url + "/api/generate", content=b"not json", headers={"Authorization": "Bearer nope"}
    )
    assert_error(response, 401, "INVALID_API_KEY")


# --- body validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"null", b"", b'{"model": '])
def test_body_that_is_not_a_json_object_is_400(api_server: LiveServer, raw: bytes) -> None:
    with api_server.client(api_server.create_key()) as client:
        response = client.post("/api/generate", content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("fields", "error_code"),
    [
        ({"model": None}, "INVALID_MODEL"),
        ({"model": "happyhorse-1.0/image"}, "INVALID_MODEL"),
        ({"prompt": "   "}, "INVALID_PROMPT"),
        ({"prompt": "x" * 2501}, "INVALID_PROMPT"),
        ({"duration": 16}, "INVALID_DURATION"),
        ({"duration": 5.5}, "INVALID_DURATION"),
        ({"duration": True}, "INVALID_DURATION"),
        ({"mode": "ultra"}, "INVALID_REQUEST"),
        ({"aspect_ratio": "4:3"}, "INVALID_REQUEST"),
        ({"cfg_scale": 2}, "INVALID_REQUEST"),
        ({"image_urls": ["ftp://example.com/a.png"]}, "INVALID_REQUEST"),
        ({"seed": -1}, "INVALID_REQUEST"),
        ({"multi_shots": True, "sound": True}, "INVALID_REQUEST"),
        ({"model": "x", "prompt": ""}, "INVALID_MODEL"),  # model is checked before prompt
        ({"prompt": "", "duration": 99}, "INVALID_PROMPT"),  # prompt before duration
    ],
)
def test_invalid_fields_are_400_never_422(api_server: LiveServer, fields: dict, error_code: str) -> None:
    with api_server.client(api_server.create_key()) as client:
        response = client.post("/api/generate", json=body(**fields))
        assert_error(response, 400, error_code)
        assert balance(client) == 100_000  # nothing was charged


def test_missing_task_id_is_400_not_422(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key()) as client:
        assert_error(client.get("/api/status"), 400, "INVALID_REQUEST")


def test_unknown_routes_and_methods_answer_in_the_envelope(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key()) as client:
        assert_error(client.get("/api/nothing-here"), 404, "NOT_FOUND")
        assert_error(client.delete("/api/generate"), 405, "METHOD_NOT_ALLOWED")


# --- credits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "duration", "sound", "cost"),
    [("pro", 5, True, 400), ("pro", 3, False, 162), ("std", 4, True, 240), ("std", 3, False, 120)],
)
def test_cost_is_debited_on_accept(api_server: LiveServer, mode: str, duration: int, sound: bool, cost: int) -> None:
    with api_server.client(api_server.create_key(credits=1000)) as client:
        task_id = client.post("/api/generate", json=body(mode=mode, duration=duration, sound=sound)).json()["data"][
            "task_id"
        ]
        assert balance(client) == 1000 - cost
        data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
        assert data["consumed_credits"] == cost


def test_insufficient_credits_is_402_and_charges_nothing(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key(credits=100)) as client:
        assert_error(client.post("/api/generate", json=body(duration=3)), 402, "INSUFFICIENT_CREDITS")
        assert balance(client) == 100
        # a bad body is reported before the missing credits
        assert_error(client.post("/api/generate", json=body(model="nope")), 400, "INVALID_MODEL")


def test_concurrent_generates_never_overspend(api_server: LiveServer) -> None:
    """30 concurrent 3 s std requests (120 credits each) against 1200 credits: exactly 10 accepted."""
    info = api_server.create_key_info(credits=1200)
    # three keys on one account keep each key under the default 10/second generate limit
    keys = [info["api_key"]] + [api_server.create_key(account=info["account"], name=f"k{i}") for i in range(2)]
    key = keys[0]

    def submit(i: int) -> int:
        with api_server.client(keys[i % 3]) as client:
            return client.post("/api/generate", json=body(sound=False)).status_code

    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(submit, range(30)))
    assert codes.count(200) == 10, codes
    assert codes.count(402) == 20, codes
    with api_server.client(key) as client:
        assert balance(client) == 0


# --- status ---------------------------------------------------------------------------------------------


def test_status_fields_and_request_echo(api_server: LiveServer) -> None:
    sent = body(mode="std", duration="4", aspect_ratio="9:16", sound=False, seed=42, unknown_field="dropped")
    with api_server.client(api_server.create_key()) as client:
        task_id = client.post("/api/generate", json=sent).json()["data"]["task_id"]
        data = client.get("/api/status", params={"task_id": task_id}).json()["data"]
        assert data["task_id"] == task_id
        assert data["status"] in ("IN_PROGRESS", "SUCCESS")
        assert data["type"] == "text-to-video"
        assert ISO_UTC.match(data["created_at"])
        assert data["request"] == {k: v for k, v in sent.items() if k != "unknown_field"}
        assert data["seed"] == 42
        done = wait_for_task(client, task_id)
    assert done["status"] == "SUCCESS"
    assert done["consumed_credits"] == 160
    assert done["error_message"] is None
    url = done["response"]["resultUrls"][0]
    # embedded: signed by this server under its own base; distributed: presigned by the S3 store
    assert url.startswith(api_server.url + "/files/" if api_server.mode == "embedded" else "http")
    assert (done["response"]["width"], done["response"]["height"]) == (720, 1280)


def test_server_chooses_and_reports_a_seed(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key()) as client:
        task_id = client.post("/api/generate", json=body()).json()["data"]["task_id"]
        seed = client.get("/api/status", params={"task_id": task_id}).json()["data"]["seed"]
    assert isinstance(seed, int) and 0 <= seed <= 2_147_483_647


def test_another_accounts_task_is_not_found(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key(name="alice")) as alice:
        task_id = alice.post("/api/generate", json=body()).json()["data"]["task_id"]
    with api_server.client(api_server.create_key(name="bob")) as bob:
        assert_error(bob.get("/api/status", params={"task_id": task_id}), 404, "TASK_NOT_FOUND")
        assert_error(bob.get("/api/status", params={"task_id": "n92doesnotexist000"}), 404, "TASK_NOT_FOUND")


def test_a_second_key_on_the_same_account_sees_its_tasks(api_server: LiveServer) -> None:
    info = api_server.create_key_info(credits=1000)
    other = api_server.create_key(account=info["account"], name="second")
    with api_server.client(info["api_key"]) as first:
        task_id = first.post("/api/generate", json=body()).json()["data"]["task_id"]
    with api_server.client(other) as second:
        assert second.get("/api/status", params={"task_id": task_id}).status_code == 200
        assert balance(second) == 1000 - 180


# --- results ----------------------------------------------------------------------------------------------


def test_result_url_plays_without_auth_with_range(api_server: LiveServer) -> None:
    with api_server.client(api_server.create_key()) as client:
        task_id = client.post("/api/generate", json=body()).json()["data"]["task_id"]
        url = wait_for_task(client, task_id)["response"]["resultUrls"][0]
    full = httpx.get(url)
    assert full.status_code == 200
    assert full.headers["content-type"].startswith("video/mp4")
    assert full.content[4:8] == b"ftyp"
    part = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert len(part.content) == 100 and part.content == full.content[:100]


def test_tampered_result_url_is_refused(live_server: LiveServer) -> None:
    with live_server.client(live_server.create_key()) as client:
        task_id = client.post("/api/generate", json=body()).json()["data"]["task_id"]
        url = wait_for_task(client, task_id)["response"]["resultUrls"][0]
    tampered = re.sub(r"signature=([0-9a-f])", lambda m: "signature=" + ("0" if m.group(1) != "0" else "1"), url)
    assert httpx.get(tampered).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403


def test_result_urls_expire_and_use_the_public_url(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_RESULT_URL_TTL="2", HAPPYHORSE_PUBLIC_URL="http://videos.example.test")
    with server.client(server.create_key()) as client:
        task_id = client.post("/api/generate", json=body()).json()["data"]["task_id"]
        url = wait_for_task(client, task_id)["response"]["resultUrls"][0]
    assert url.startswith("http://videos.example.test/files/")
    local = url.replace("http://videos.example.test", server.url)
    assert httpx.get(local).status_code == 200
    time.sleep(3.1)
    assert httpx.get(local).status_code == 403


# --- failures and refunds ------------------------------------------------------------------------------------


def test_unfetchable_image_fails_the_task_and_refunds(api_server: LiveServer, image_server) -> None:  # type: ignore[no-untyped-def]
    with api_server.client(api_server.create_key(credits=1000)) as client:
        task_id = client.post("/api/generate", json=body(image_urls=[image_server.url("missing.png")])).json()["data"][
            "task_id"
        ]
        data = wait_for_task(client, task_id)
        assert data["status"] == "FAILED"
        assert data["consumed_credits"] == 0
        assert "image_urls[0]" in data["error_message"]
        assert data["response"] is None
        assert balance(client) == 1000


def test_non_image_fails_the_task_and_refunds(api_server: LiveServer, image_server) -> None:  # type: ignore[no-untyped-def]
    url = image_server.put("page.png", b"<html>not an image</html>", "text/html")
    with api_server.client(api_server.create_key(credits=1000)) as client:
        task_id = client.post("/api/generate", json=body(image_urls=[url])).json()["data"]["task_id"]
        data = wait_for_task(client, task_id)
        assert data["status"] == "FAILED" and balance(client) == 1000


def test_private_addresses_are_refused_by_default(server_factory, image_server) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false")
    url = image_server.put("a.png", png_bytes(64, 64, (200, 30, 30)))
    with server.client(server.create_key(credits=1000)) as client:
        refused = client.post("/api/generate", json=body(image_urls=[url]))  # a literal loopback host: at submit
        assert refused.status_code == 400 and "loopback" in refused.json()["message"], refused.text
        assert balance(client) == 1000


# --- rate limits ------------------------------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_RATE_LIMIT_STATUS="3/minute", HAPPYHORSE_RATE_LIMIT_GENERATE="2/minute")
    key, other = server.create_key(), server.create_key(name="other")
    with server.client(key) as client:
        codes = [client.get("/api/status", params={"task_id": "n92x"}).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        limited = client.get("/api/status", params={"task_id": "n92x"})
        payload = assert_error(limited, 429, "RATE_LIMITED")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60, payload
        assert [client.post("/api/generate", json=body()).status_code for _ in range(3)] == [200, 200, 429]
    with server.client(other) as client:  # limits are per key
        assert client.get("/api/status", params={"task_id": "n92x"}).status_code == 404


# --- ops ---------------------------------------------------------------------------------------------------------


def test_healthz_and_docs_show_the_real_schema(api_server: LiveServer) -> None:
    assert httpx.get(api_server.url + "/healthz").status_code == 200
    assert httpx.get(api_server.url + "/docs").status_code == 200
    spec = httpx.get(api_server.url + "/openapi.json").json()
    generate = spec["paths"]["/api/generate"]["post"]
    schema = generate["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "prompt", "duration", "multi_prompt", "image_urls"} <= set(schema["properties"])


def test_openapi_schema_carries_the_contracts_own_limits(api_server: LiveServer) -> None:
    from happyhorse import contract

    spec = httpx.get(api_server.url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    generate = spec["paths"]["/api/generate"]["post"]
    body = generate["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert (body["duration"]["anyOf"][0]["minimum"], body["duration"]["anyOf"][0]["maximum"]) == contract.DURATION_RANGE
    assert body["mode"]["enum"] == list(contract.MODES) and body["mode"]["default"] == contract.DEFAULT_MODE
    assert body["aspect_ratio"]["enum"] == list(contract.ASPECT_RATIOS)
    assert (body["cfg_scale"]["minimum"], body["cfg_scale"]["maximum"]) == contract.CFG_SCALE_RANGE
    assert body["multi_prompt"]["anyOf"][0]["maxItems"] == contract.MAX_SHOTS
    assert body["happyhorse_elements"]["anyOf"][0]["maxItems"] == contract.MAX_ELEMENTS
    shot = schemas["ShotBody"]["properties"]["duration"]
    assert (shot["minimum"], shot["maximum"]) == contract.SHOT_DURATION_RANGE
    urls = schemas["ElementBody"]["properties"]["element_input_urls"]
    assert (urls["minItems"], urls["maxItems"]) == contract.ELEMENT_URLS_RANGE
