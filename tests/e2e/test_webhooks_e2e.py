"""Signed webhooks through the real server, in both deployments, verified with the real
``standardwebhooks`` library: events, retries, giving up, hanging receivers, restarts, URL rules."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from collections.abc import Callable

import pytest
from standardwebhooks import Webhook

from harness import Cluster, LiveServer, WebhookReceiver, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


@pytest.fixture
def receivers() -> Callable[..., WebhookReceiver]:
    made: list[WebhookReceiver] = []

    def make(**kwargs: object) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs)  # type: ignore[arg-type]
        made.append(receiver)
        return receiver

    yield make  # type: ignore[misc]
    for receiver in made:
        receiver.close()


def start(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster], **env: str
) -> LiveServer:
    env = {"HAPPYHORSE_WEBHOOK_RETRY_DELAYS": "0.3,0.3,0.3", **env}
    return server_factory(**env) if mode == "embedded" else cluster_factory(**env).apis[0]


def account_with_endpoint(server: LiveServer, url: str) -> tuple[str, str, str]:
    """(api key, account id, signing secret) of a new account whose endpoint is ``url``."""
    info = server.create_key_info(credits=10_000)
    added = json.loads(server.cli("webhooks", "add", info["account"], url, "--json").stdout)
    assert added["endpoint_id"].startswith("we_") and added["url"] == url
    secret = server.cli("webhooks", "secret", info["account"]).stdout.strip()
    assert secret.startswith("whsec_")
    return info["api_key"], info["account"], secret


def without_urls(task: dict) -> dict:
    response = task.get("response")
    stripped = {k: v for k, v in response.items() if k != "resultUrls"} if response else None
    return {**task, "response": stripped}


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_signed_events_for_endpoints_and_callback_urls(
    mode: str,
    server_factory,
    cluster_factory,  # type: ignore[no-untyped-def]
    receivers,
    image_server,
) -> None:
    server = start(mode, server_factory, cluster_factory)
    endpoint, callback = receivers(), receivers()
    key, _account, secret = account_with_endpoint(server, endpoint.url)
    client = server.client(key)
    ok = client.post("/api/generate", json={**BODY, "callback_url": callback.url}).json()["data"]["task_id"]
    bad = client.post("/api/generate", json={**BODY, "image_urls": [image_server.url("missing.png")]})
    bad_id = bad.json()["data"]["task_id"]
    done, failed = wait_for_task(client, ok), wait_for_task(client, bad_id)
    endpoint.wait_for(2)
    callback.wait_for(1)
    time.sleep(1)  # nothing more arrives: one delivery per event and URL
    assert len(endpoint.received) == 2 and len(callback.received) == 1

    by_task = {event["data"]["task_id"]: event for event in endpoint.events(secret)}
    assert by_task[ok]["type"] == "task.succeeded" and by_task[bad_id]["type"] == "task.failed"
    assert without_urls(by_task[ok]["data"]) == without_urls(done)
    assert by_task[ok]["data"]["response"]["resultUrls"][0].startswith("http")
    assert without_urls(by_task[bad_id]["data"]) == without_urls(failed)
    assert by_task[ok]["timestamp"].endswith("Z")
    [callback_event] = callback.events(secret)
    assert callback_event["type"] == "task.succeeded" and callback_event["data"]["task_id"] == ok
    ids = [headers["webhook-id"] for headers, _, _ in endpoint.received + callback.received]
    assert len(set(ids)) == 3  # unique per event and URL

    # a cancelled task: task.cancelled, with the status object as /api/status shows it after the cancel
    long = client.post("/api/generate", json={**BODY, "mode": "pro", "duration": 15}).json()["data"]["task_id"]
    cancelled = client.post("/api/cancel", json={"task_id": long}).json()["data"]
    endpoint.wait_for(3)
    event = endpoint.events(secret)[2]
    assert event["type"] == "task.cancelled" and event["data"]["cancelled"] is True
    assert without_urls(event["data"]) == without_urls(cancelled)

    # a tampered body or a rotated secret no longer verifies
    headers, body, _ = endpoint.received[0]
    with pytest.raises(Exception):  # noqa: B017 - the library's own error type
        Webhook(secret).verify(body.replace("task", "tusk"), headers)
    rotated = server.cli("webhooks", "secret", _account, "--rotate").stdout.strip()
    assert rotated != secret and rotated.startswith("whsec_")
    assert server.cli("webhooks", "secret", _account).stdout.strip() == rotated  # kept until rotated again

    # the account's endpoints: listed, removed, and then sent nothing
    [listed] = json.loads(server.cli("webhooks", "list", _account, "--json").stdout)
    assert listed["url"] == endpoint.url and listed["endpoint_id"].startswith("we_")
    server.cli("webhooks", "remove", listed["endpoint_id"])
    assert json.loads(server.cli("webhooks", "list", _account, "--json").stdout) == []
    assert server.cli("webhooks", "remove", listed["endpoint_id"], check=False).returncode == 2
    wait_for_task(client, client.post("/api/generate", json=BODY).json()["data"]["task_id"])
    time.sleep(1)
    assert len(endpoint.received) == 3


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_retries_keep_the_id_then_give_up(mode: str, server_factory, cluster_factory, receivers) -> None:  # type: ignore[no-untyped-def]
    server = start(mode, server_factory, cluster_factory, HAPPYHORSE_WEBHOOK_RETRIES="2")
    flaky = receivers(answers=[500, 503, 200])
    key, account, secret = account_with_endpoint(server, flaky.url)
    dead = receivers(answers=[500])
    server.cli("webhooks", "add", account, dead.url)
    client = server.client(key)
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    wait_for_task(client, task_id)
    flaky.wait_for(3)
    dead.wait_for(3)
    time.sleep(1.5)
    assert len(flaky.received) == 3  # delivered on the third attempt
    assert len(dead.received) == 3  # the first attempt and two retries, then given up
    for receiver in (flaky, dead):
        assert len({headers["webhook-id"] for headers, _, _ in receiver.received}) == 1
        assert all(e["data"]["task_id"] == task_id for e in receiver.events(secret))
    gaps = [b[2] - a[2] for a, b in zip(flaky.received, flaky.received[1:], strict=False)]
    assert all(gap >= 0.2 for gap in gaps), gaps  # backoff between attempts


def test_a_hanging_receiver_slows_nobody(server_factory, receivers) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_WEBHOOK_RETRY_DELAYS="60")
    hanging, quick = receivers(hang_s=30), receivers()
    key, account, secret = account_with_endpoint(server, hanging.url)
    server.cli("webhooks", "add", account, quick.url)
    client = server.client(key)
    first = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    wait_for_task(client, first)
    hanging.wait_for(1)
    started = time.monotonic()
    second = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    wait_for_task(client, second)
    quick.wait_for(2, timeout=10)
    assert time.monotonic() - started < 8  # rendering and the other receiver went on meanwhile
    assert {e["data"]["task_id"] for e in quick.events(secret)} == {first, second}


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_pending_deliveries_survive_a_kill(mode: str, server_factory, cluster_factory, receivers) -> None:  # type: ignore[no-untyped-def]
    """Killed (distributed: the API node and the worker) with a retry due: the outbox remembers it."""
    server = start(mode, server_factory, cluster_factory, HAPPYHORSE_WEBHOOK_RETRY_DELAYS="3")
    receiver = receivers(answers=[500, 200])
    key, _account, secret = account_with_endpoint(server, receiver.url)
    client = server.client(key)
    task_id = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    wait_for_task(client, task_id)
    receiver.wait_for(1)
    server.stop(signal.SIGKILL)  # the retry is due in ~3 s: only the outbox remembers it
    server.restart()
    receiver.wait_for(2, timeout=30)
    assert [e["data"]["task_id"] for e in receiver.events(secret)] == [task_id, task_id]


def test_url_rules(server_factory, receivers) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(HAPPYHORSE_ALLOW_PRIVATE_URLS="false")
    info = server.create_key_info(credits=10_000)
    client = server.client(info["api_key"])
    for url in (
        "ftp://example.com/x",
        "not a url",
        "https://example.com/" + "x" * 2048,
        "http://10.0.0.7/hook",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/",
    ):
        response = client.post("/api/generate", json={**BODY, "callback_url": url})
        assert response.status_code == 400, url
        assert response.json()["error_code"] == "INVALID_REQUEST" and "callback_url" in response.json()["message"]
    assert client.get("/api/credits").json()["data"]["balance"] == 10_000  # nothing charged
    refused = server.cli("webhooks", "add", info["account"], "http://192.168.1.10/hook", check=False)
    assert refused.returncode == 2 and "private" in refused.stderr

    # a name that resolves to loopback passes the submit check and is refused at delivery
    host = socket.gethostname()
    if socket.gethostbyname(host) != "127.0.0.1":
        pytest.skip(f"{host} does not resolve to loopback here")
    receiver = receivers()
    port = receiver.server.server_address[1]
    response = client.post("/api/generate", json={**BODY, "callback_url": f"http://{host}:{port}/hook"})
    assert response.status_code == 200
    wait_for_task(client, response.json()["data"]["task_id"])
    deadline = time.monotonic() + 20
    errors: list[tuple] = []
    while not errors:
        assert time.monotonic() < deadline, "no delivery attempt was made"
        time.sleep(0.2)
        with sqlite3.connect(server.data_dir / "happyhorse.db") as db:
            errors = db.execute("SELECT error FROM webhook_attempts").fetchall()
    assert "loopback" in errors[0][0]
    assert receiver.received == []
