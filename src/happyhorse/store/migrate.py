"""Apply the Alembic migrations programmatically (``happyhorse db upgrade``; ``serve`` on SQLite)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sync_url(url: str) -> str:
    """The synchronous driver URL Alembic runs with (same database, blocking driver)."""
    return url.replace("sqlite+aiosqlite://", "sqlite://").replace("postgresql+asyncpg://", "postgresql+psycopg://")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def create_private_sqlite_file(url: str) -> None:
    """Create the SQLite database file owner-only (0600) before SQLite does (it would use 0644).

    An empty file is a valid empty database, and SQLite gives its ``-wal`` and ``-shm`` files the
    main file's permissions, so nothing of the database is ever readable by other users.
    """
    if not url.startswith("sqlite"):
        return
    path = make_url(url).database
    if not path or path == ":memory:":
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def upgrade(url: str, revision: str = "head") -> None:
    create_private_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)
