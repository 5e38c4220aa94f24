"""Results in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2, …), handed out as presigned URLs.

``HAPPYHORSE_STORAGE_URL=s3://BUCKET[/PREFIX]?endpoint=http://host:8333&region=us-east-1`` — query
parameters, all optional:

- ``endpoint``: the S3 API the server and workers talk to (default: AWS for the region).
- ``region``: signing region (default ``us-east-1``).
- ``access_key`` / ``secret_key``: credentials; otherwise boto3's usual chain (``AWS_ACCESS_KEY_ID``
  and ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles…). Prefer the environment: a URL
  ends up in process listings and logs.
- ``addressing``: ``path`` or ``virtual``; default ``path`` with a custom endpoint (most self-hosted
  stores need it), ``virtual`` on AWS.

``resultUrls`` are presigned GETs valid for ``HAPPYHORSE_RESULT_URL_TTL`` seconds, signed for
``HAPPYHORSE_STORAGE_PUBLIC_ENDPOINT`` when clients reach the store at another address than the
servers do (the host is part of the signature, so the URL cannot be rewritten afterwards).
Presigning is local computation: no request to the store per status call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from happyhorse.config import Settings
from happyhorse.storage.signed_urls import SignedUrls

log = logging.getLogger("happyhorse.storage")

CONTENT_TYPE = "video/mp4"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    addressing: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"HAPPYHORSE_STORAGE_URL must look like s3://BUCKET?endpoint=…, not {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint") or None
        prefix = parts.path.strip("/")
        return cls(
            bucket=parts.netloc,
            prefix=f"{prefix}/" if prefix else "",
            endpoint=endpoint,
            region=query.get("region") or "us-east-1",
            access_key=query.get("access_key"),
            secret_key=query.get("secret_key"),
            addressing=query.get("addressing") or ("path" if endpoint else "virtual"),
        )


class S3ResultStore:
    def __init__(self, location: S3Location, ttl_seconds: int, public_endpoint: str | None = None) -> None:
        self.location = location
        self.ttl = ttl_seconds
        self.urls = SignedUrls(ttl_seconds)
        self.client = self._client(location.endpoint)
        # Presign with the address clients use: the signature covers the host.
        self.presigner = self._client(public_endpoint) if public_endpoint else self.client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ResultStore:
        assert settings.storage_url is not None
        return cls(S3Location.parse(settings.storage_url), settings.result_url_ttl, settings.storage_public_endpoint)

    def _client(self, endpoint: str | None) -> Any:
        loc = self.location
        s3_options: Any = {"addressing_style": loc.addressing}
        config = Config(signature_version="s3v4", s3=s3_options, retries={"max_attempts": 5, "mode": "standard"})
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=loc.region,
            aws_access_key_id=loc.access_key,
            aws_secret_access_key=loc.secret_key,
            config=config,
        )

    def object_key(self, key: str) -> str:
        return f"{self.location.prefix}{key}"

    def put(self, local_path: Path, key: str) -> None:
        self.client.upload_file(
            str(local_path), self.location.bucket, self.object_key(key), ExtraArgs={"ContentType": CONTENT_TYPE}
        )
        local_path.unlink(missing_ok=True)

    def url(self, key: str, base_url: str) -> str:
        params = {"Bucket": self.location.bucket, "Key": self.object_key(key)}
        return self.urls.get(
            key, "", lambda: str(self.presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=self.ttl))
        )

    def delete(self, key: str) -> None:
        self.urls.forget(key)
        self.client.delete_object(Bucket=self.location.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.location.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (workers call this at start; needs the right to create)."""
        try:
            self.client.head_bucket(Bucket=self.location.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            log.info("creating bucket %s", self.location.bucket)
            self.client.create_bucket(Bucket=self.location.bucket)
