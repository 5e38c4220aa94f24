"""``happyhorse webhooks``: an account's endpoints and signing secret, from the operator's shell."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")

webhooks_app = typer.Typer(help="Webhook endpoints and signing secrets of an account.", no_args_is_help=True)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (HAPPYHORSE_DATA_DIR).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _in_db(data_dir: Path | None, work: Callable[[Any], Awaitable[T]]) -> T:
    from happyhorse.config import Settings
    from happyhorse.store.db import Database
    from happyhorse.store.migrate import upgrade

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
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


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


async def _account_id(session: Any, account: str) -> str | None:
    from happyhorse.store import accounts

    found = await accounts.find_account(session, account)
    return found.id if found else None


@webhooks_app.command("add")
def add(account: str, url: str, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Send every task event of ACCOUNT (id or name) to URL."""
    from happyhorse.config import Settings
    from happyhorse.errors import InvalidRequest
    from happyhorse.store import webhooks as repo
    from happyhorse.webhooks.urls import check_webhook_url

    try:
        checked = check_webhook_url(url, field="URL", allow_private=Settings().allow_private_urls)
    except InvalidRequest as exc:
        _fail(exc.message)

    async def work(session: Any) -> dict[str, Any] | None:
        account_id = await _account_id(session, account)
        if account_id is None:
            return None
        endpoint = await repo.add_endpoint(session, account_id, checked)
        return {"endpoint_id": endpoint.id, "account": account_id, "url": endpoint.url}

    info = _in_db(data_dir, work)
    if info is None:
        _fail(f"no account {account!r}")
    assert info is not None
    typer.echo(json.dumps(info) if as_json else f"{info['endpoint_id']}  {info['url']}")


@webhooks_app.command("list")
def list_endpoints(account: str, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """ACCOUNT's webhook endpoints."""
    from happyhorse.store import webhooks as repo

    async def work(session: Any) -> list[dict[str, Any]] | None:
        account_id = await _account_id(session, account)
        if account_id is None:
            return None
        return [
            {"endpoint_id": e.id, "url": e.url, "created_at": e.created_at.isoformat()}
            for e in await repo.endpoints_of(session, account_id)
        ]

    rows = _in_db(data_dir, work)
    if rows is None:
        _fail(f"no account {account!r}")
    assert rows is not None
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['endpoint_id']}  {row['url']}")


@webhooks_app.command("remove")
def remove(endpoint_id: str, data_dir: DataDir = None) -> None:
    """Stop sending events to ENDPOINT_ID."""
    from happyhorse.store import webhooks as repo

    async def work(session: Any) -> bool:
        return await repo.remove_endpoint(session, endpoint_id)

    if not _in_db(data_dir, work):
        _fail(f"no webhook endpoint {endpoint_id!r}")
    typer.echo(f"removed {endpoint_id}")


@webhooks_app.command("secret")
def secret(
    account: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it with a new one.")] = False,
    data_dir: DataDir = None,
) -> None:
    """ACCOUNT's signing secret (whsec_…): verify deliveries with it (Standard Webhooks)."""
    from happyhorse.store import webhooks as repo
    from happyhorse.webhooks.signing import new_secret

    async def work(session: Any) -> str | None:
        account_id = await _account_id(session, account)
        if account_id is None:
            return None
        return await repo.secret_for(session, account_id, new_secret, rotate=rotate)

    value = _in_db(data_dir, work)
    if value is None:
        _fail(f"no account {account!r}")
    typer.echo(value)
