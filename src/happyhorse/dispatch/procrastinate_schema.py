"""procrastinate's tables, applied by ``happyhorse db upgrade`` beside our Alembic migrations.

procrastinate ships its full schema (``schema.sql``) and one SQL file per change since
(``sql/migrations/NN.NN.NN_NN_name.sql``) but keeps no record of what a database has: that is left
to the application. We keep it in ``happyhorse_procrastinate_schema`` (one row: the name of the
last migration file the schema corresponds to):

- no procrastinate tables yet → apply ``schema.sql``, record the newest migration's name;
- recorded version older than the installed procrastinate → apply the newer migration files in
  order (pre and post files alike: run ``db upgrade`` with the workers stopped);
- up to date → nothing (so a second ``db upgrade`` is a no-op).

It runs under an advisory lock, so two nodes upgrading at once cannot both apply the schema; each
step commits with its version row, so a failed upgrade resumes where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from procrastinate.schema import SchemaManager

from happyhorse.dispatch.procrastinate_app import conninfo

log = logging.getLogger("happyhorse.db")

UPGRADE_LOCK_ID = 0x6868736368656D61  # "hhschema"
VERSION_TABLE = "happyhorse_procrastinate_schema"


def migration_files() -> list[Path]:
    """procrastinate's migration files, oldest first (their names sort by version)."""
    return sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"))


def latest_version() -> str:
    return migration_files()[-1].stem


def upgrade_procrastinate(database_url: str) -> str:
    """Bring procrastinate's schema up to the installed version; returns what was done, in words."""
    target = latest_version()
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (UPGRADE_LOCK_ID,))  # released when we disconnect
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        current = row[0] if row else None
        if current is None:
            has_tables = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            with conn.transaction():
                if has_tables and has_tables[0]:
                    # Made outside happyhorse (e.g. `procrastinate schema --apply`): trust them as current.
                    action = f"found procrastinate's tables; recorded them as {target}"
                else:
                    conn.execute(SchemaManager.get_schema().encode())  # bytes: no %-placeholder parsing
                    action = f"applied procrastinate's schema ({target})"
                _record(conn, target)
            return action
        pending = [f for f in migration_files() if f.stem > current]
        for path in pending:
            # One transaction per file: some add enum values that later files use, which
            # PostgreSQL allows only once the addition is committed.
            log.info("applying procrastinate migration %s", path.name)
            with conn.transaction():
                conn.execute(path.read_bytes())
                _record(conn, path.stem)
        if pending:
            return f"applied {len(pending)} procrastinate migration(s), now {target}"
        return f"procrastinate's schema is up to date ({target})"


def _record(conn: psycopg.Connection, version: str) -> None:
    conn.execute(f"DELETE FROM {VERSION_TABLE}")
    conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (version,))
