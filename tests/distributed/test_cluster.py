"""Distributed mode's own behaviour: schema upgrades, presigned S3 results, cancel, stalls, heartbeats."""

from __future__ import annotations

import httpx

from conftest import Cluster, wait_for_task

MODEL = "happyhorse-1.0/video"


def submit(client: httpx.Client, **fields: object) -> str:
    body = {"model": MODEL, "prompt": "a horse in the snow", "mode": "std", "duration": 3, **fields}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def test_task_renders_to_a_presigned_s3_url(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    api = cluster.apis[0]
    with api.client(api.create_key(credits=1000)) as client:
        data = wait_for_task(client, submit(client), timeout=120)
    assert data["status"] == "SUCCESS", api.log()
    url = data["response"]["resultUrls"][0]
    assert url.startswith(cluster.s3.endpoint + "/") and "X-Amz-Signature=" in url
    full = httpx.get(url, timeout=30)
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and part.content == full.content[:100]
    assert cluster.result_keys() == [f"{cluster.s3_prefix}/{data['task_id']}-1.mp4"]
