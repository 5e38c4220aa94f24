"""Settings: every knob of the server, read from ``HAPPYHORSE_*`` environment variables.

CLI flags (``--data-dir``, ``--host``, ``--port``) map 1:1 onto these fields and win over the
environment. Everything has an embedded default, so ``happyhorse serve`` works on a fresh machine.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "happyhorse"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAPPYHORSE_", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: SQLite file in data_dir
    storage_url: str | None = None  # default: local directory in data_dir; or s3://bucket?endpoint=…
    storage_public_endpoint: str | None = None  # S3 endpoint clients reach, if it differs
    public_url: str | None = None  # base of result URLs; default: the request's scheme and host
    secret_key: str | None = None  # signs result URLs and sessions; default: generated, kept in data_dir

    # --- HTTP -----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    result_url_ttl: int = 24 * 3600  # seconds a signed result URL stays valid
    result_retention: int = 7 * 24 * 3600  # seconds a finished task's video is kept; 0: forever
    retention_sweep_interval: float = 60.0  # seconds between sweeps for expired results and uploads
    telemetry: bool = False  # FastAPI's OpenTelemetry tracing/metrics (checked on every request when on)
    access_log: bool = False  # per-request log lines (usually the reverse proxy's job; they cost throughput)
    log_format: str = "plain"  # plain | json (one object per line, with request and task ids)
    metrics_token: str | None = None  # when set, GET /metrics needs Authorization: Bearer <token>
    max_body_bytes: int = 1024 * 1024  # largest request body (uploads: fetch_max_bytes); over it: 413
    request_timeout: float = 30.0  # seconds a connection has to send a complete request; 0: no limit
    trusted_proxies: str = ""  # IPs/CIDRs whose X-Forwarded-For/-Proto are believed; default: none

    # --- limits ---------------------------------------------------------------------------------
    rate_limit_generate: str = "10/second;600/minute"
    rate_limit_status: str = "20/second;3000/minute"
    rate_limit_storage: str = "memory://"
    max_active_tasks: int = 0  # tasks one account may have queued or running at once; 0: no cap
    upload_quota_bytes: int = 1024 * 1024 * 1024  # uploaded images one account may keep stored; 0: no quota
    openai_models: str = "sora-2=std,sora-2-pro=pro"  # /v1/videos model names and the mode each one picks

    # --- input fetching -------------------------------------------------------------------------
    allow_private_urls: bool = False
    fetch_timeout: float = 20.0  # seconds for one image, connect to last byte
    fetch_max_bytes: int = 20 * 1024 * 1024
    fetch_max_pixels: int = 40_000_000
    fetch_max_redirects: int = 5

    # --- webhooks -------------------------------------------------------------------------------
    webhook_retries: int = 6  # retries after the first attempt, then the delivery is given up
    webhook_retry_delays: str = "5,30,120,600,3600,21600"  # seconds before each retry (±20% jitter)

    # --- rendering ------------------------------------------------------------------------------
    engine: str = "synthetic"  # synthetic | diffusers
    models: Path | None = None  # model profiles (TOML) for the diffusers engine
    engine_processes: int = 1  # engine processes in embedded mode (one per GPU with diffusers)
    gpus: str | None = None  # comma-separated GPU indices; default: all detected
    max_attempts: int = 3  # render attempts before a task is failed and refunded
    queue: str = "default"  # distributed mode: the procrastinate queue this worker pool serves
    dispatch: str = "auto"  # auto | embedded | procrastinate (auto: embedded on SQLite, else procrastinate)
    stall_timeout: float = 60.0  # distributed: seconds without a worker heartbeat before its task is retried
    sweep_interval: float = 10.0  # seconds between sweeps (stalled jobs, tasks missing a job, unwritten outcomes)
    db_busy_timeout: float = 30.0  # SQLite: seconds a write waits for another writer's lock before it fails
    dispatch_stuck_after: float = 60.0  # /healthz: 503 once tasks wait and the dispatcher has not moved this long

    # --- dashboard ------------------------------------------------------------------------------
    session_ttl: int = 7 * 24 * 3600

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if item:
                ipaddress.ip_network(item, strict=False)  # a typo fails start-up instead of trusting nothing
        return value

    @field_validator("openai_models")
    @classmethod
    def _openai_models_name_a_mode(cls, value: str) -> str:
        """``name=std|pro`` items: a typo fails start-up instead of quietly dropping a model name."""
        for item in (part.strip() for part in value.split(",")):
            name, _, mode = item.partition("=")
            if item and (not name.strip() or mode.strip() not in ("std", "pro")):
                raise ValueError(f"HAPPYHORSE_OPENAI_MODELS: {item!r} is not name=std or name=pro")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'happyhorse.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def dispatch_mode(self) -> str:
        if self.dispatch != "auto":
            return self.dispatch
        return "embedded" if self.is_sqlite else "procrastinate"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @cached_property
    def signing_key(self) -> bytes:
        """The HMAC key: configured, or generated once and kept beside the database."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.ensure_data_dir()
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".secret.", suffix=".tmp")  # 0600 from the start
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
                os.link(tmp, path)  # atomic: two processes starting at once agree on one key
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return path.read_text().strip().encode()

    def ensure_data_dir(self) -> None:
        """The data directory, created owner-only (0700): it holds the database, the key and every upload."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def ensure_dirs(self) -> None:
        self.ensure_data_dir()
        for d in (self.results_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
