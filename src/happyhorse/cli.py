"""``happyhorse``: the server, its admin commands, and the API client.

Admin commands (keys, credits, users, db) talk to the database directly, so they work while the
server runs; on embedded SQLite they create and migrate the database on first use.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

app = typer.Typer(
    help="happyhorse: a self-hostable HappyHorse 1.0 video API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(
    help="Show your balance (API), or grant and show credits (admin).", invoke_without_command=True
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users: create and list the people who sign in.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")

T = TypeVar("T")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (HAPPYHORSE_DATA_DIR).")]


def settings_for(data_dir: Path | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    from happyhorse.config import Settings

    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def with_db(data_dir: Path | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(session)`` in one write transaction against the configured database."""
    from happyhorse.store.db import Database
    from happyhorse.store.migrate import upgrade

    settings = settings_for(data_dir)
    if settings.is_sqlite:
        settings.ensure_dirs()
        upgrade(settings.resolved_database_url)

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


# --- serve ----------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HAPPYHORSE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HAPPYHORSE_PORT).")] = None,
    data_dir: DataDir = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPU indices for engine processes, e.g. 0,1 (with a `parallel` profile of N: N at a time)."),
    ] = None,
) -> None:
    """Start the API server (embedded mode runs the engines too)."""
    import uvicorn

    from happyhorse import logs
    from happyhorse.client.cli import cli_command, quote
    from happyhorse.server.app import create_app
    from happyhorse.server.fast_path import StatusFastPath
    from happyhorse.server.observability import Observe
    from happyhorse.server.request_timeout import timed_protocol
    from happyhorse.server.services import services_of
    from happyhorse.store.migrate import upgrade

    settings = settings_for(data_dir, host=host, port=port, gpus=gpus)
    if settings.dispatch_mode == "embedded":
        check_engine_groups(settings)
    logs.configure(settings.log_format)
    settings.ensure_dirs()
    if settings.is_sqlite:
        upgrade(settings.resolved_database_url)  # embedded: migrate by itself; PostgreSQL: `db upgrade`
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    typer.echo(f"happyhorse {settings.dispatch_mode} mode, engine {settings.engine}, data in {settings.data_dir}")
    typer.echo(f"Serving the HappyHorse 1.0 API at {url}  (docs: {url}/docs)")
    typer.echo(
        f"Get an API key:  {cli_command()} keys create --name me --credits 10000"
        + (f" --data-dir {quote(str(data_dir))}" if data_dir else "")
    )
    app = create_app(settings)
    stack = Observe(StatusFastPath(app), lambda: services_of(app).db, settings.metrics_token)
    # X-Forwarded-For/-Proto are believed only from HAPPYHORSE_TRUSTED_PROXIES (default: no one), so a client
    # cannot choose its own address (the sign-in throttle counts per address) or scheme.
    trusted = settings.trusted_proxies.strip()
    uvicorn.run(
        stack,
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        http=timed_protocol(settings.request_timeout),
        access_log=settings.access_log,
        log_config=None,
    )


# --- keys -----------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name for the key (and for a new account).")],
    credits: Annotated[int, typer.Option(help="Credits for the new account.", min=0)] = 0,
    account: Annotated[str | None, typer.Option(help="Add the key to this existing account (id or name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create an API key: for a new account with CREDITS, or on an existing --account."""
    from happyhorse.store import accounts

    async def work(session: Any) -> dict[str, Any]:
        found = await accounts.join_or_create_account(session, account, name, credits, "granted with a new key")
        if found is None:
            fail(f"no account {account!r}")
        assert found is not None
        new = await accounts.create_key(session, found.id, name)
        return {
            "api_key": new.plaintext,
            "key_id": new.key.id,
            "name": name,
            "account": found.id,
            "account_name": found.name,
            "balance": await accounts.balance(session, found.id),
        }

    info = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(f"API key (shown once, keep it safe): {info['api_key']}")
    typer.echo(
        f"key id {info['key_id']} · account {info['account']} ({info['account_name']}) · balance {info['balance']}"
    )


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None) -> None:
    """List API keys (never the keys themselves: they are stored only as hashes)."""
    from happyhorse.server.presenters import iso_utc
    from happyhorse.store import accounts

    async def work(session: Any) -> list[dict[str, Any]]:
        return [
            {
                "key_id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "account": k.account_id,
                "created_at": iso_utc(k.created_at),
                "last_used_at": iso_utc(k.last_used_at),
                "revoked": k.revoked_at is not None,
            }
            for k in await accounts.list_keys(session)
        ]

    rows = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(
            f"{row['key_id']}  {row['prefix']}…  {row['name']:<20} {row['account']}  {state}  "
            f"last used {row['last_used_at'] or 'never'}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key: from now on it gets 401."""
    from happyhorse.store import accounts

    if not with_db(data_dir, lambda session: accounts.revoke_key(session, key_id)):
        fail(f"no active key {key_id!r}")
    typer.echo(f"revoked {key_id}")


# --- credits --------------------------------------------------------------------------------------


@credits_app.callback()
def credits_main(ctx: typer.Context) -> None:
    """Without a subcommand: the balance of HAPPYHORSE_API_KEY's account, asked of the API."""
    if ctx.invoked_subcommand is None:
        from happyhorse.client.cli import show_credits

        show_credits()


@credits_app.command("grant")
def credits_grant(account: str, amount: int, data_dir: DataDir = None) -> None:
    """Add AMOUNT credits to ACCOUNT (id or name); a negative amount removes credits."""
    from happyhorse.store import accounts

    async def work(session: Any) -> int | None:
        found = await accounts.find_account(session, account)
        if found is None:
            return None
        return await accounts.grant_credits(session, found.id, amount, note="granted by an operator")

    new_balance = with_db(data_dir, work)
    if new_balance is None:
        fail(f"no account {account!r}")
    typer.echo(f"{account}: balance {new_balance}")


@credits_app.command("show")
def credits_show(
    account: str, as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None
) -> None:
    """Show ACCOUNT's balance."""
    from happyhorse.store import accounts

    async def work(session: Any) -> dict[str, Any] | None:
        found = await accounts.find_account(session, account)
        if found is None:
            return None
        return {"account": found.id, "name": found.name, "balance": found.balance}

    info = with_db(data_dir, work)
    if info is None:
        fail(f"no account {account!r}")
    assert info is not None
    typer.echo(json.dumps(info) if as_json else f"{info['account']} ({info['name']}): balance {info['balance']}")


# --- db -------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply every migration to the configured database (and procrastinate's schema on PostgreSQL)."""
    from happyhorse.store.migrate import upgrade

    settings = settings_for(data_dir)
    if settings.is_sqlite:
        settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    if not settings.is_sqlite:  # PostgreSQL: procrastinate's job tables too (distributed dispatch)
        from happyhorse.dispatch.procrastinate_schema import upgrade_procrastinate

        typer.echo(upgrade_procrastinate(settings.resolved_database_url))
    typer.echo("database is up to date")


# --- users (dashboard users, created straight in the database; works while the server runs) -------


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The email address they sign in with.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Their password (at least 8 characters); asked if omitted.",
        ),
    ],
    account: Annotated[
        str | None,
        typer.Option(help="Add them to this account (id or name); default: a new account named after the email."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make them an admin (all accounts, grants, users).")] = False,
    credits: Annotated[int, typer.Option(help="Credits for a new account.", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user who can sign in to the dashboard."""
    from happyhorse.server.dashboard.auth import hash_password, password_problem
    from happyhorse.store import accounts
    from happyhorse.store import users as user_repo

    if "@" not in email or any(c.isspace() for c in email.strip()):
        fail(f"{email!r} is not an email address")
    if (problem := password_problem(password)) is not None:
        fail(f"password: {problem}")
    password_hash = hash_password(password)

    async def work(session: Any) -> dict[str, Any]:
        if await user_repo.find_by_email(session, email) is not None:
            fail(f"a user with email {user_repo.normalise_email(email)!r} already exists")
        found = await accounts.join_or_create_account(
            session, account, user_repo.normalise_email(email), credits, "granted with a new user"
        )
        if found is None:
            fail(f"no account {account!r}")
        assert found is not None
        user = await user_repo.create_user(session, found.id, email, password_hash, "admin" if admin else "member")
        return {
            "user_id": user.id,
            "email": user.email,
            "role": user.role,
            "account": found.id,
            "account_name": found.name,
        }

    info = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(
        f"created {info['role']} {info['email']} ({info['user_id']}) in account {info['account']} "
        f"({info['account_name']})"
    )


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="The new password (at least 8 characters); asked if omitted.",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Set a user's password. Every dashboard session they have ends."""
    from happyhorse.server.dashboard.auth import hash_password, password_problem
    from happyhorse.store import users as user_repo

    if (problem := password_problem(password)) is not None:
        fail(f"password: {problem}")
    password_hash = hash_password(password)

    async def work(session: Any) -> bool:
        user = await user_repo.find_by_email(session, email)
        if user is None:
            return False
        await user_repo.set_password_hash(session, user.id, password_hash)
        return True

    if not with_db(data_dir, work):
        fail(f"no user with email {email!r}")
    typer.echo(f"password changed for {email.strip().lower()}; their sessions have ended")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None) -> None:
    """List dashboard users (never their passwords: only argon2 hashes are stored)."""
    from happyhorse.server.presenters import iso_utc
    from happyhorse.store import users as user_repo

    async def work(session: Any) -> list[dict[str, Any]]:
        return [
            {
                "user_id": u.id,
                "email": u.email,
                "role": u.role,
                "account": u.account_id,
                "created_at": iso_utc(u.created_at),
            }
            for u in await user_repo.list_users(session)
        ]

    rows = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['user_id']}  {row['email']:<32} {row['role']:<7} {row['account']}  {row['created_at']}")


def check_engine_groups(settings: Any) -> None:
    """Exit with the reason when the GPUs cannot form the engine groups the models file asks for
    (e.g. 3 GPUs for `parallel = { ulysses = 2 }`), before anything starts."""
    from happyhorse.worker.engine_group import GroupingError, plan_slots

    try:
        plan_slots(settings)
    except GroupingError as exc:
        fail(str(exc))


def _checked_worker(worker: Callable[..., None]) -> Callable[..., None]:
    """``happyhorse worker`` with the same engine-group check as serve (its options unchanged)."""
    import functools

    @functools.wraps(worker)
    def run(**options: Any) -> None:
        picked = {"gpus": options.get("gpus"), "engine_processes": options.get("concurrency")}
        check_engine_groups(settings_for(**picked))
        from happyhorse.worker.scratch import claim_work_dir

        claim_work_dir(settings_for(options.get("data_dir")).data_dir / "work")  # what a killed render left goes
        worker(**options)

    return run


def _register_feature_commands() -> None:
    """Command groups that live beside their feature (imports stay light: no server stack)."""
    from happyhorse.client.cli import register
    from happyhorse.dispatch.worker_cli import worker
    from happyhorse.engines.diffusers.check import models_app

    register(app)
    app.add_typer(models_app, name="models")
    app.command("worker")(_checked_worker(worker))
    from happyhorse.webhooks.cli import webhooks_app

    app.add_typer(webhooks_app, name="webhooks")


_register_feature_commands()


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="happyhorse")
    sys.exit(0)
