"""The S3 result store against a real S3 server (SeaweedFS): presigned URLs a browser can play, and
nothing else."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import pytest

from happyhorse.config import Settings
from happyhorse.storage import create_store
from happyhorse.storage.s3 import S3Location, S3ResultStore

VIDEO = bytes(range(256)) * 64  # 16 KiB stand-in for an MP4


@pytest.fixture
def store(seaweedfs, monkeypatch: pytest.MonkeyPatch) -> S3ResultStore:  # type: ignore[no-untyped-def]
    for name, value in seaweedfs.credentials_env().items():
        monkeypatch.setenv(name, value)
    settings = Settings(storage_url=seaweedfs.storage_url(f"t-{secrets.token_hex(4)}"), result_url_ttl=60)
    made = create_store(settings)
    assert isinstance(made, S3ResultStore)
    return made


def put(store: S3ResultStore, tmp_path: Path, key: str = "task-1.mp4") -> str:
    path = tmp_path / "out.mp4"
    path.write_bytes(VIDEO)
    store.put(path, key)
    assert not path.exists()  # moved, not copied: a worker's scratch space stays small
    return key


def test_location_parsing() -> None:
    loc = S3Location.parse("s3://videos/prod/results?endpoint=http://s3.local:8333&region=eu-west-1")
    assert (loc.bucket, loc.prefix, loc.endpoint, loc.region, loc.addressing) == (
        "videos",
        "prod/results/",
        "http://s3.local:8333",
        "eu-west-1",
        "path",
    )
    aws = S3Location.parse("s3://videos")
    assert (aws.prefix, aws.endpoint, aws.region, aws.addressing) == ("", None, "us-east-1", "virtual")
    with pytest.raises(ValueError, match="s3://BUCKET"):
        S3Location.parse("s3:///no-bucket")


def test_presigned_url_plays_with_range(store: S3ResultStore, tmp_path: Path) -> None:
    url = store.url(put(store, tmp_path), "http://api.example")
    full = httpx.get(url)
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4" and full.content == VIDEO
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == VIDEO[100:200]
    assert store.exists("task-1.mp4")


def test_tampered_urls_are_refused(store: S3ResultStore, tmp_path: Path) -> None:
    put(store, tmp_path, "task-1.mp4")
    put(store, tmp_path, "task-2.mp4")
    url = store.url("task-1.mp4", "")
    signature = url.split("X-Amz-Signature=")[1][:64]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert httpx.get(url.replace(signature, flipped)).status_code == 403
    assert httpx.get(url.replace("task-1.mp4", "task-2.mp4")).status_code == 403  # another object
    assert httpx.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=3600")).status_code == 403  # longer life
    assert httpx.get(url.split("?")[0]).status_code == 403  # no signature: the bucket is private


def test_expired_url_is_refused(store: S3ResultStore, tmp_path: Path) -> None:
    put(store, tmp_path)
    store.ttl = 3
    signed_at = time.time()
    url = store.url("task-1.mp4", "")
    assert httpx.get(url).status_code == 200
    time.sleep(max(0.0, signed_at + 4.5 - time.time()))  # the signing time is rounded down to a second
    assert httpx.get(url).status_code == 403


def test_public_endpoint_is_signed_into_the_url(
    seaweedfs,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    for name, value in seaweedfs.credentials_env().items():
        monkeypatch.setenv(name, value)
    public = seaweedfs.endpoint.replace("127.0.0.1", "localhost")  # what clients reach; same server here
    settings = Settings(storage_url=seaweedfs.storage_url("pub"), storage_public_endpoint=public)
    store = create_store(settings)
    assert isinstance(store, S3ResultStore)
    url = store.url(put(store, tmp_path, "pub-1.mp4"), "")
    assert url.startswith(public + "/")
    assert httpx.get(url).status_code == 200


def test_delete_and_missing_objects(store: S3ResultStore, tmp_path: Path) -> None:
    key = put(store, tmp_path)
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting twice is fine (a late worker and the sweeper may both try)


def test_credentials_can_come_from_the_url(
    seaweedfs,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    creds = seaweedfs.credentials_env()
    url = (
        seaweedfs.storage_url("creds") + f"&access_key={creds['AWS_ACCESS_KEY_ID']}"
        f"&secret_key={creds['AWS_SECRET_ACCESS_KEY']}"
    )
    store = create_store(Settings(storage_url=url))
    assert isinstance(store, S3ResultStore)
    assert httpx.get(store.url(put(store, tmp_path), "")).status_code == 200


def test_ensure_bucket_creates_a_missing_bucket(seaweedfs, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in seaweedfs.credentials_env().items():
        monkeypatch.setenv(name, value)
    bucket = f"hh-new-{secrets.token_hex(3)}"
    store = create_store(Settings(storage_url=f"s3://{bucket}?endpoint={seaweedfs.endpoint}"))
    assert isinstance(store, S3ResultStore)
    store.ensure_bucket()
    store.ensure_bucket()  # and is a no-op the second time
    store.client.head_bucket(Bucket=bucket)
    store.client.delete_bucket(Bucket=bucket)
