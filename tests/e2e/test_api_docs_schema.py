"""What /docs is built from, as a reader of the schema meets it: a Bearer scheme that "Authorize" fills, a
request example for every kind of generate, and each error status of each operation with its own example,
worded as the server really answers."""

from __future__ import annotations

import httpx
import pytest

from happyhorse.contract import parse_generate
from harness import LiveServer

pytestmark = pytest.mark.e2e

KINDS = {"text-to-video", "image-to-video", "first-last-frame", "multi-shot", "elements"}


def error_examples(response: dict) -> list[dict]:
    content = response["content"]["application/json"]
    if "example" in content:
        return [content["example"]]
    return [choice["value"] for choice in content["examples"].values()]


def test_the_schema_documents_auth_examples_and_each_error(live_server: LiveServer) -> None:
    spec = httpx.get(live_server.url + "/openapi.json").json()

    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items() if scheme == {**scheme, "type": "http", "scheme": "bearer"}]
    assert bearer, schemes
    api_operations = [(path, op) for path, ops in spec["paths"].items() if path.startswith("/api/") for op in ops]
    assert len(api_operations) >= 8, api_operations
    for path, ops in spec["paths"].items():
        if path.startswith("/api/"):
            for method, operation in ops.items():
                assert operation.get("security") == [{bearer[0]: []}], (method, path)

    examples = spec["paths"]["/api/generate"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) >= KINDS, set(examples)
    shapes = {  # (multi-shot, images, elements) of each kind
        "text-to-video": (False, 0, False),
        "image-to-video": (False, 1, False),
        "first-last-frame": (False, 2, False),
        "multi-shot": (True, 0, False),
        "elements": (False, 0, True),
    }
    for name, shape in shapes.items():
        request = parse_generate(examples[name]["value"])  # every example is a request the server accepts
        assert (request.multi_shots, len(request.image_urls), bool(request.elements)) == shape, name

    seen: dict[str, set[str]] = {}
    for path, ops in spec["paths"].items():
        for method, operation in ops.items():
            assert "422" not in operation["responses"], (method, path)  # never FastAPI's 422
            if not path.startswith("/api/"):
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                for example in error_examples(response):
                    assert example["code"] == int(status) and example["data"] is None, (path, status, example)
                    assert example["error_code"] and example["message"], (path, status, example)
                    seen.setdefault(status, set()).add(example["error_code"])
    # Each status shows its own codes: no 401 or 404 dressed as INVALID_DURATION, as before.
    assert seen["401"] == {"INVALID_API_KEY"} and seen["402"] == {"INSUFFICIENT_CREDITS"}
    assert seen["404"] == {"TASK_NOT_FOUND"} and seen["413"] == {"REQUEST_TOO_LARGE"}
    assert seen["409"] == {"IDEMPOTENCY_CONFLICT", "TASK_NOT_CANCELLABLE", "TASK_NOT_FINISHED"}
    assert seen["429"] == {"RATE_LIMITED"} and seen["500"] == {"INTERNAL_ERROR"}
    assert {"INVALID_MODEL", "INVALID_PROMPT", "INVALID_DURATION", "INVALID_REQUEST"} <= seen["400"]
    assert "402" not in spec["paths"]["/api/status"]["get"]["responses"]  # polling costs nothing

    # The documented answers are the real ones.
    with live_server.client(live_server.create_key()) as client:
        for path, method, call in (
            ("/api/status", "get", lambda: client.get("/api/status")),
            ("/api/cancel", "post", lambda: client.post("/api/cancel", json={})),
            ("/api/tasks", "get", lambda: client.get("/api/tasks", params={"limit": 0})),
        ):
            answer = call()
            documented = error_examples(spec["paths"][path][method]["responses"]["400"])
            assert answer.status_code == 400 and answer.json() in documented, (path, answer.text, documented)
        answer = client.post("/api/upload", files={"other": ("a.png", b"x", "image/png")})
        assert answer.json() in error_examples(spec["paths"]["/api/upload"]["post"]["responses"]["400"]), answer.text
        revoked = httpx.get(live_server.url + "/api/credits", headers={"Authorization": "Bearer hh_nope"})
        assert revoked.json() in error_examples(spec["paths"]["/api/credits"]["get"]["responses"]["401"])
