"""``GET /metrics``, ``X-Request-Id`` and JSON logs through the real server, in both deployments."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import httpx
import pytest

from happyhorse.pricing import task_cost
from harness import Cluster, LiveServer, WebhookReceiver, wait_for_task

pytestmark = pytest.mark.e2e

BODY = {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 3, "sound": False}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text exposition, e.g. ``sample(t, "x_total", mode="std")``."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_metrics_report_the_deployment(
    mode: str, server_factory: Callable[..., LiveServer], cluster_factory: Callable[..., Cluster], image_server
) -> None:  # type: ignore[no-untyped-def]
    server = server_factory() if mode == "embedded" else cluster_factory(apis=2).apis[0]
    nodes = [server] if mode == "embedded" else server.cluster.apis  # type: ignore[attr-defined]
    info = server.create_key_info(credits=10_000)
    receiver = WebhookReceiver()
    server.cli("webhooks", "add", info["account"], receiver.url)
    client = server.client(info["api_key"])
    ok = client.post("/api/generate", json=BODY).json()["data"]["task_id"]
    bad = client.post("/api/generate", json={**BODY, "image_urls": [image_server.url("missing.png")]})
    wait_for_task(client, ok)
    wait_for_task(client, bad.json()["data"]["task_id"])
    receiver.wait_for(2)
    receiver.close()
    time.sleep(0.5)  # the attempt is counted once its outcome is recorded
    # each attempt is counted by the node that sent it: the deployment's deliveries are the nodes' sum
    scrapes = [httpx.get(f"{node.url}/metrics").text for node in nodes]
    assert sum(sample(t, "happyhorse_webhook_deliveries_total", outcome="delivered") for t in scrapes) == 2
    assert sum(sample(t, "happyhorse_webhook_deliveries_total", outcome="failed") for t in scrapes) == 0

    text = httpx.get(f"{server.url}/metrics").text
    assert sample(text, "happyhorse_tasks_total", mode="std", type="text-to-video", outcome="succeeded") == 1
    assert sample(text, "happyhorse_tasks_total", mode="std", type="image-to-video", outcome="failed") == 1
    assert sample(text, "happyhorse_queue_depth") == 0
    assert sample(text, "happyhorse_tasks_running") == 0
    cost = task_cost("std", 3, False)
    assert sample(text, "happyhorse_credits_debited_total") == 2 * cost
    assert sample(text, "happyhorse_credits_refunded_total") == cost
    assert sample(text, "happyhorse_http_requests_total", route="/api/generate", status="200") == 2
    assert sample(text, "happyhorse_http_requests_total", route="/api/status", status="200") >= 2
    assert sample(text, "happyhorse_http_request_duration_seconds_count", route="/api/generate") == 2
    if mode == "embedded":  # the process that rendered reports the render
        assert (
            sample(text, "happyhorse_render_seconds_count", engine="synthetic", mode="std", type="text-to-video") == 1
        )
    else:  # every API node tells the same deployment-wide story
        other = httpx.get(f"{server.cluster.apis[1].url}/metrics").text  # type: ignore[attr-defined]
        for name in ("happyhorse_credits_debited_total", "happyhorse_credits_refunded_total", "happyhorse_queue_depth"):
            assert sample(other, name) == sample(text, name)


def test_metrics_token_request_ids_and_json_logs(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(HAPPYHORSE_METRICS_TOKEN="s3cret", HAPPYHORSE_LOG_FORMAT="json")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer s3cret"})
    assert scraped.status_code == 200 and "happyhorse_queue_depth" in scraped.text

    client = server.client(server.create_key(credits=10_000))
    generated = client.post("/api/generate", json=BODY, headers={"X-Request-Id": "req-from-client-1"})
    assert generated.headers["x-request-id"] == "req-from-client-1"  # a sane one is kept
    task_id = generated.json()["data"]["task_id"]
    polled = client.get("/api/status", params={"task_id": task_id})  # the fast path too
    assert re.fullmatch(r"[0-9a-f]{16}", polled.headers["x-request-id"])
    assert polled.headers["x-request-id"] != client.get("/api/credits").headers["x-request-id"]
    assert client.get("/nowhere").headers["x-request-id"]
    wait_for_task(client, task_id)

    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines, server.log()
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("task_id") == task_id for line in lines), "no log line names the task"
    accepted = [line for line in lines if line.get("request_id") == "req-from-client-1"]
    assert accepted and all(line.get("task_id") == task_id for line in accepted), accepted


def test_worker_metrics_port_reports_its_renders(cluster_factory: Callable[..., Cluster]) -> None:
    from harness import free_port

    cluster = cluster_factory(apis=1, workers=0, HAPPYHORSE_METRICS_TOKEN="s3cret", HAPPYHORSE_LOG_FORMAT="json")
    port = free_port()
    cluster.add_worker("--metrics-port", str(port))
    server = cluster.apis[0]
    client = server.client(server.create_key(credits=10_000))
    generated = client.post("/api/generate", json=BODY, headers={"X-Request-Id": "req-distributed-1"})
    assert generated.headers["x-request-id"] == "req-distributed-1"
    task_id = generated.json()["data"]["task_id"]
    assert wait_for_task(client, task_id)["status"] == "SUCCESS"
    # JSON logs on both sides: the API line names the request and the task, the worker's the task
    api_lines = [json.loads(line) for line in LiveServer.log(server).splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "req-distributed-1" and line.get("task_id") == task_id for line in api_lines)
    worker_lines = [json.loads(line) for line in cluster.workers[0].log().splitlines() if line.startswith("{")]
    assert any(line.get("task_id") == task_id for line in worker_lines), cluster.workers[0].log()

    token = {"Authorization": "Bearer s3cret"}
    for url in (f"http://127.0.0.1:{port}/metrics", f"{server.url}/metrics"):  # the token guards both
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=token, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    # the worker rendered it, so the worker (not the API) reports the render's time
    assert (
        sample(answer.text, "happyhorse_render_seconds_count", engine="synthetic", mode="std", type="text-to-video")
        == 1
    )
    assert (
        sample(answer.text, "happyhorse_render_seconds_sum", engine="synthetic", mode="std", type="text-to-video") > 0
    )
    api = httpx.get(f"{server.url}/metrics", headers=token).text
    assert "happyhorse_render_seconds_count{" not in api  # the API node rendered nothing
