"""Accounts, API keys and the credit ledger. All their SQL lives here; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.ids import hash_api_key, key_prefix, new_api_key, new_id
from happyhorse.store.models import Account, ApiKey, LedgerEntry, utcnow


@dataclass
class NewKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


async def create_account(session: AsyncSession, name: str, credits: int = 0) -> Account:
    account = Account(id=new_id("acct"), name=name, balance=0, created_at=utcnow())
    session.add(account)
    await session.flush()
    if credits:
        await grant_credits(session, account.id, credits, note="initial credits")
    return account


async def join_or_create_account(
    session: AsyncSession, ref: str | None, new_name: str, credits: int, note: str
) -> Account | None:
    """For a new key or user: the existing account ``ref`` (topped up by ``credits``), or without
    ``ref`` a new account named ``new_name`` holding ``credits``. None when ``ref`` names no account."""
    if ref is None:
        return await create_account(session, new_name, credits)
    account = await find_account(session, ref)
    if account is not None and credits:
        await grant_credits(session, account.id, credits, note=note)
    return account


async def find_account(session: AsyncSession, ref: str) -> Account | None:
    """An account by id, or by name when exactly one account has that name."""
    account = await session.get(Account, ref)
    if account is not None:
        return account
    rows = (await session.execute(select(Account).where(Account.name == ref).limit(2))).scalars().all()
    return rows[0] if len(rows) == 1 else None


async def list_accounts(session: AsyncSession) -> list[Account]:
    return list((await session.execute(select(Account).order_by(Account.created_at))).scalars())


async def create_key(session: AsyncSession, account_id: str, name: str) -> NewKey:
    plaintext = new_api_key()
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        prefix=key_prefix(plaintext),
        key_hash=hash_api_key(plaintext),
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return NewKey(key, plaintext)


async def find_active_key(session: AsyncSession, plaintext: str) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.key_hash == hash_api_key(plaintext), ApiKey.revoked_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_keys(session: AsyncSession, account_id: str | None = None) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if account_id:
        stmt = stmt.where(ApiKey.account_id == account_id)
    return list((await session.execute(stmt)).scalars())


async def revoke_key(session: AsyncSession, key_id: str, account_id: str | None = None) -> bool:
    stmt = update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    if account_id:
        stmt = stmt.where(ApiKey.account_id == account_id)
    return bool((await session.execute(stmt)).rowcount > 0)  # type: ignore[attr-defined]


async def touch_key(session: AsyncSession, key_id: str, when: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


async def balance(session: AsyncSession, account_id: str) -> int | None:
    return (await session.execute(select(Account.balance).where(Account.id == account_id))).scalar_one_or_none()


async def grant_credits(session: AsyncSession, account_id: str, amount: int, note: str | None = None) -> int:
    """Add (or, with a negative amount, remove) credits; returns the new balance."""
    stmt = (
        update(Account)
        .where(Account.id == account_id)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
    )
    new_balance = (await session.execute(stmt)).scalar_one()
    session.add(LedgerEntry(account_id=account_id, kind="grant", amount=amount, note=note, created_at=utcnow()))
    return int(new_balance)


async def debit_for_task(session: AsyncSession, account_id: str, task_id: str, cost: int) -> bool:
    """Take ``cost`` credits only if the balance covers it. Atomic: a conditional UPDATE."""
    stmt = (
        update(Account).where(Account.id == account_id, Account.balance >= cost).values(balance=Account.balance - cost)
    )
    if (await session.execute(stmt)).rowcount == 0:  # type: ignore[attr-defined]
        return False
    session.add(
        LedgerEntry(
            account_id=account_id,
            task_id=task_id,
            kind="debit",
            amount=-cost,
            idem_key=f"debit:{task_id}",
            created_at=utcnow(),
        )
    )
    return True


async def refund_task(session: AsyncSession, account_id: str, task_id: str, amount: int) -> bool:
    """Give a task's credits back exactly once: the ledger's unique ``refund:<task>`` key decides."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(LedgerEntry)
        .values(
            account_id=account_id,
            task_id=task_id,
            kind="refund",
            amount=amount,
            idem_key=f"refund:{task_id}",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["idem_key"])
        .returning(LedgerEntry.id)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        return False
    await session.execute(update(Account).where(Account.id == account_id).values(balance=Account.balance + amount))
    return True


async def ledger(session: AsyncSession, account_id: str | None = None, limit: int = 200) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit)
    if account_id:
        stmt = stmt.where(LedgerEntry.account_id == account_id)
    return list((await session.execute(stmt)).scalars())


async def ledger_sum(session: AsyncSession, account_id: str) -> int:
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    return int((await session.execute(stmt)).scalar_one())
