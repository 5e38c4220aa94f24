"""Uploads in a distributed deployment live in the bucket beside the results: a worker on another
machine (its own data dir, no shared disk) renders from an image the API node took, with the SSRF
guard fully on, and the retention sweep deletes the object once no task needs it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

import services
from harness import Cluster, first_frame_mean, png_bytes, wait_for_task

RED = (230, 30, 30)


def test_a_worker_elsewhere_renders_an_upload_from_the_bucket(
    cluster_factory: Callable[..., Cluster], seaweedfs: services.SeaweedS3, tmp_path: Path
) -> None:
    cluster = cluster_factory(
        HAPPYHORSE_ALLOW_PRIVATE_URLS="false",  # no loopback fetch to the API node could save it
        HAPPYHORSE_RESULT_RETENTION="8",
        HAPPYHORSE_RETENTION_SWEEP_INTERVAL="1",
    )
    api = cluster.apis[0]
    picture = png_bytes(160, 90, RED, pattern=False)
    with api.client(api.create_key()) as client:
        uploaded = client.post("/api/upload", files={"file": ("red.png", picture)})
        assert uploaded.status_code == 200, uploaded.text
        url = uploaded.json()["data"]["url"]
        name = url.rsplit("/", 1)[1]
        key = f"{cluster.s3_prefix}/uploads/{name}"
        assert key in seaweedfs.keys(f"{cluster.s3_prefix}/uploads/")
        assert not list(cluster.root.rglob(name)), "the upload is on a node's disk"
        served = httpx.get(url, timeout=30)  # GET /uploads/<name> on the API node, from the bucket
        assert served.status_code == 200 and served.content == picture
        assert served.headers["content-type"] == "image/png"

        body = {"model": "happyhorse-1.0/video", "prompt": "the red card", "duration": 3, "sound": False}
        created = client.post("/api/generate", json={**body, "image_urls": [url]})
        assert created.status_code == 200, created.text
        done = wait_for_task(client, created.json()["data"]["task_id"])
        assert done["status"] == "SUCCESS", done["error_message"]
        mean = first_frame_mean(httpx.get(done["response"]["resultUrls"][0], timeout=30).content, tmp_path)
        assert mean[0] > 150 and mean[1] < 110 and mean[2] < 110, mean  # the first frame is the red picture

        # Past the retention, with no task left that needs it, the object goes and the URL says so.
        deadline = time.monotonic() + 60
        while key in seaweedfs.keys(f"{cluster.s3_prefix}/uploads/"):
            assert time.monotonic() < deadline, "the upload outlived the retention"
            time.sleep(0.5)
        gone = httpx.get(url, timeout=30)
        assert gone.status_code == 404 and gone.json()["error_code"] == "NOT_FOUND"
