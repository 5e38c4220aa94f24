"""Can the database take a write right now? A cheap probe for ``/healthz``, bounded in time.

A read (``SELECT 1``) says nothing about writes: a SQLite file whose write lock another process
holds still answers reads (WAL), and so does a PostgreSQL standby. The probe starts a write
transaction and rolls it back, so it changes nothing:

- SQLite: ``BEGIN IMMEDIATE`` on its own short-lived connection (a ``busy_timeout`` of ``timeout``,
  not the pool's long one), which must take the same write lock every task transition takes.
- PostgreSQL: ``txid_current()`` inside a transaction, which only a writable primary can answer.

A full disk is not seen here (SQLite rewrites the space its WAL already has); the caller checks
the data directory for that.
"""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import text

from happyhorse.store.db import Database
from happyhorse.store.hot_reads import sqlite_file


async def write_problem(db: Database, timeout: float) -> str | None:
    """None when a write transaction could start within ``timeout`` seconds; else why not, in one line."""
    try:
        path = sqlite_file(db.url)
        if path is not None:
            await asyncio.wait_for(asyncio.to_thread(_sqlite_begin_immediate, path, timeout), timeout + 1)
        else:
            await asyncio.wait_for(_postgres_write_transaction(db), timeout)
    except TimeoutError:
        return f"a write did not start within {timeout:g} s"
    except Exception as exc:
        return _one_line(exc)
    return None


def _sqlite_begin_immediate(path: str, timeout: float) -> None:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # waits up to ``timeout`` for another writer, then "database is locked"
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def _postgres_write_transaction(db: Database) -> None:
    async with db.write_engine.connect() as conn:
        await conn.execute(text("SELECT txid_current()"))  # "cannot assign TransactionIds" on a standby
        await conn.rollback()


def _one_line(exc: BaseException) -> str:
    """The error without a traceback or the SQL (driver messages can span lines)."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")
