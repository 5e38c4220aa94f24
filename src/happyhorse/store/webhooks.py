"""The webhook tables' queries: secrets, endpoints, the delivery outbox and its attempt log."""

from __future__ import annotations

import secrets as _random
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.store.models import Task, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret, utcnow
from happyhorse.task_status import TaskStatus

EVENT_OF_STATUS: dict[str, str] = {
    TaskStatus.SUCCESS: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}
TEST_EVENT = "webhook.test"


def new_id(prefix: str) -> str:
    return prefix + _random.token_urlsafe(18).replace("-", "x").replace("_", "y")


# --- secrets ----------------------------------------------------------------------------------------


async def secret_for(session: AsyncSession, account_id: str, make: Callable[[], str], *, rotate: bool = False) -> str:
    """The account's signing secret, created on first use (or replaced, with ``rotate``)."""
    row = await session.get(WebhookSecret, account_id)
    if row is None:
        row = WebhookSecret(account_id=account_id, secret=make(), created_at=utcnow())
        session.add(row)
        await session.flush()
    elif rotate:
        row.secret, row.created_at = make(), utcnow()
        await session.flush()
    return row.secret


# --- endpoints --------------------------------------------------------------------------------------


async def add_endpoint(session: AsyncSession, account_id: str, url: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(id=new_id("we_"), account_id=account_id, url=url, created_at=utcnow())
    session.add(endpoint)
    await session.flush()
    return endpoint


async def endpoints_of(session: AsyncSession, account_id: str) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id).order_by(WebhookEndpoint.created_at)
    return list((await session.execute(stmt)).scalars())


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


async def remove_endpoint(session: AsyncSession, endpoint_id: str, account_id: str | None = None) -> bool:
    """Remove the endpoint (and stop its pending deliveries); False if there was none."""
    stmt = delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if account_id is not None:
        stmt = stmt.where(WebhookEndpoint.account_id == account_id)
    gone = bool(getattr(await session.execute(stmt), "rowcount", 0))
    if gone:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == "pending")
            .values(state="failed", last_error="endpoint removed")
        )
    return gone


# --- the outbox --------------------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    *,
    account_id: str,
    task_id: str | None,
    url: str,
    event_type: str,
    event_at: datetime,
    endpoint_id: str | None,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=new_id("msg_"),
        account_id=account_id,
        task_id=task_id,
        endpoint_id=endpoint_id,
        url=url,
        event_type=event_type,
        event_at=event_at,
        state="pending",
        attempts=0,
        next_attempt_at=event_at,
        created_at=utcnow(),
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def enqueue_task_outcome(session: AsyncSession, task_id: str, account_id: str, status: str) -> int:
    """The outbox rows for a task that just ended: one per account endpoint, one for its ``callback_url``.

    Called by the terminal transitions inside their own transaction, so the deliveries exist exactly
    when the terminal state does: a crash right after the commit loses none.
    """
    event_type = EVENT_OF_STATUS.get(status)
    if event_type is None:
        return 0
    moment = utcnow()
    targets: list[tuple[str, str | None]] = [(e.url, e.id) for e in await endpoints_of(session, account_id)]
    callback = (await session.execute(select(Task.callback_url).where(Task.id == task_id))).scalar_one_or_none()
    if callback:
        targets.append((callback, None))
    for url, endpoint_id in targets:
        await enqueue(
            session,
            account_id=account_id,
            task_id=task_id,
            url=url,
            event_type=event_type,
            event_at=moment,
            endpoint_id=endpoint_id,
        )
    return len(targets)


async def enqueue_test_event(session: AsyncSession, account_id: str, endpoint_id: str, url: str) -> str:
    delivery = await enqueue(
        session,
        account_id=account_id,
        task_id=None,
        url=url,
        event_type=TEST_EVENT,
        event_at=utcnow(),
        endpoint_id=endpoint_id,
    )
    return delivery.id


async def due(session: AsyncSession, now: datetime, limit: int) -> list[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def claim(session: AsyncSession, delivery: WebhookDelivery, lease_until: datetime) -> bool:
    """Take the delivery's next attempt: only one sender's conditional update matches."""
    stmt = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.state == "pending",
            WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
            WebhookDelivery.attempts == delivery.attempts,
        )
        .values(next_attempt_at=lease_until)
    )
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def record_attempt(
    session: AsyncSession,
    delivery_id: str,
    *,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
    latency_ms: int,
    state: str,
    next_attempt_at: datetime,
) -> None:
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempted_at=attempted_at,
            status_code=status_code,
            error=error,
            latency_ms=latency_ms,
        )
    )
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            attempts=WebhookDelivery.attempts + 1,
            state=state,
            next_attempt_at=next_attempt_at,
            last_status=status_code,
            last_error=error,
        )
    )


async def redeliver(session: AsyncSession, delivery_id: str, account_id: str | None) -> bool:
    """Send a delivery again now (same webhook-id), whatever state it ended in."""
    stmt = (
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(state="pending", next_attempt_at=utcnow(), attempts=0)
    )
    if account_id is not None:
        stmt = stmt.where(WebhookDelivery.account_id == account_id)
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def deliveries_of(session: AsyncSession, account_id: str, limit: int = 50) -> list[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.account_id == account_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def attempts_of(session: AsyncSession, delivery_ids: list[str]) -> list[WebhookAttempt]:
    if not delivery_ids:
        return []
    stmt = (
        select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.attempted_at)
    )
    return list((await session.execute(stmt)).scalars())
