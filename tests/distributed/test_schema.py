"""``happyhorse db upgrade`` on PostgreSQL: our Alembic migrations and procrastinate's schema, idempotent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import services
from happyhorse.dispatch.procrastinate_schema import VERSION_TABLE, latest_version, upgrade_procrastinate
from harness import HAPPYHORSE, base_env


def tables(url: str) -> set[str]:
    return {row[0] for row in services.pg_query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_db_upgrade_applies_both_schemas_and_is_idempotent(tmp_path: Path) -> None:
    with services.fresh_database() as url:
        env = base_env(tmp_path, HAPPYHORSE_DATABASE_URL=url)
        first = subprocess.run([*HAPPYHORSE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
        second = subprocess.run([*HAPPYHORSE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "applied procrastinate's schema" in first.stdout
        assert second.returncode == 0, second.stderr
        assert "procrastinate's schema is up to date" in second.stdout
        assert {"tasks", "accounts", "ledger", "api_keys", "alembic_version", "procrastinate_jobs"} <= tables(url)
        assert services.pg_query(url, f"SELECT version FROM {VERSION_TABLE}") == [(latest_version(),)]


def test_procrastinate_migrations_apply_in_order_from_any_recorded_version() -> None:
    """The path a procrastinate upgrade takes: every migration file newer than the recorded version.
    Recording the empty version replays the whole chain from procrastinate's first release."""
    with services.fresh_database() as url:
        services.pg_query(
            url, f"CREATE TABLE {VERSION_TABLE} (version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        services.pg_query(url, f"INSERT INTO {VERSION_TABLE} (version) VALUES ('')")
        assert "procrastinate migration(s)" in upgrade_procrastinate(url)
        assert "up to date" in upgrade_procrastinate(url)
        assert "procrastinate_jobs" in tables(url)


def test_tables_made_outside_happyhorse_are_adopted() -> None:
    with services.fresh_database() as url:
        from procrastinate.schema import SchemaManager

        services.pg_query(url, SchemaManager.get_schema())
        assert "recorded them as" in upgrade_procrastinate(url)
        assert "up to date" in upgrade_procrastinate(url)


def test_worker_refuses_to_run_on_sqlite(tmp_path: Path) -> None:
    proc = subprocess.run([*HAPPYHORSE, "worker"], env=base_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "needs HAPPYHORSE_DATABASE_URL=postgresql" in proc.stderr


def test_worker_without_the_schema_says_what_to_run(tmp_path: Path) -> None:
    with services.fresh_database() as url:
        proc = subprocess.run(
            [*HAPPYHORSE, "worker"],
            env=base_env(tmp_path, HAPPYHORSE_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert "run `happyhorse db upgrade`" in proc.stderr
