"""Dashboard users: people who sign in, each belonging to one account. All their SQL lives here."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.ids import new_id
from happyhorse.store.models import User, utcnow

ROLES = ("admin", "member")


def normalise_email(email: str) -> str:
    """One spelling per address, so ``Ann@X.org`` and ``ann@x.org `` are the same user."""
    return email.strip().lower()


async def create_user(
    session: AsyncSession, account_id: str, email: str, password_hash: str, role: str = "member"
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    user = User(
        id=new_id("user"),
        account_id=account_id,
        email=normalise_email(email),
        password_hash=password_hash,
        role=role,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    return user


async def get(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email == normalise_email(email))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_users(session: AsyncSession, account_id: str | None = None) -> list[User]:
    stmt = select(User).order_by(User.created_at)
    if account_id:
        stmt = stmt.where(User.account_id == account_id)
    return list((await session.execute(stmt)).scalars())


async def set_password_hash(session: AsyncSession, user_id: str, password_hash: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
