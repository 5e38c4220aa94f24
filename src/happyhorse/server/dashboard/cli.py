"""``happyhorse users``: dashboard users, created straight in the database (works while the server runs)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from happyhorse.cli import DataDir, fail, with_db

users_app = typer.Typer(help="Dashboard users: create and list the people who sign in.", no_args_is_help=True)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The email address they sign in with.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="Their password (at least 8 characters); asked if omitted.")],
    account: Annotated[str | None, typer.Option(help="Add them to this account (id or name); "
                                                     "default: a new account named after the email.")] = None,
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
            session, account, user_repo.normalise_email(email), credits, "granted with a new user")
        if found is None:
            fail(f"no account {account!r}")
        assert found is not None
        user = await user_repo.create_user(session, found.id, email, password_hash, "admin" if admin else "member")
        return {"user_id": user.id, "email": user.email, "role": user.role, "account": found.id,
                "account_name": found.name}

    info = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(f"created {info['role']} {info['email']} ({info['user_id']}) in account {info['account']} "
               f"({info['account_name']})")


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="The new password (at least 8 characters); asked if omitted.")],
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
        return [{"user_id": u.id, "email": u.email, "role": u.role, "account": u.account_id,
                 "created_at": iso_utc(u.created_at)} for u in await user_repo.list_users(session)]

    rows = with_db(data_dir, work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['user_id']}  {row['email']:<32} {row['role']:<7} {row['account']}  {row['created_at']}")
