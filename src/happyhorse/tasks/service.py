"""The task state machine: every transition of a task's life is one function here, and only these call
the store's task writes. Functions take the caller's session and never commit: the caller's transaction
makes a debit and its task row (or a failure and its refund) one atomic step. Each transition records
one ``TaskEvent``, published when that transaction commits (``tasks.events``).

Transitions: ``submit`` (accept: debit + insert QUEUED), ``start`` (claim an attempt: QUEUED → RUNNING),
``progress``, ``succeed``, ``fail_and_refund``, ``requeue`` (RUNNING → QUEUED), ``cancel_and_refund``
(QUEUED/RUNNING → CANCELLED). Writes after ``start`` are fenced by the attempt number. The terminal
transitions also write the task's webhook deliveries (the outbox) in the same transaction."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from happyhorse.contract import GenerateRequest
from happyhorse.errors import InsufficientCredits
from happyhorse.pricing import task_cost
from happyhorse.store import accounts
from happyhorse.store import jobs as job_repo
from happyhorse.store import tasks as task_repo
from happyhorse.store import webhooks as webhook_repo
from happyhorse.store.ids import new_task_id
from happyhorse.store.models import Task, utcnow
from happyhorse.tasks.events import EventHub, EventKind, TaskEvent, record
from happyhorse.tasks.status import TaskStatus

log = logging.getLogger("happyhorse.tasks")

MAX_SEED = 2_147_483_647
SPEC_VERSION = 2  # 1: today's format before versions (no "spec_version" key); 2: the same fields, versioned
CANCELLED_MESSAGE = "cancelled by the client"

Claim = task_repo.Claim


async def _emit(
    session: AsyncSession,
    events: EventHub | None,
    task_id: str,
    account_id: str,
    kind: EventKind,
    status: TaskStatus,
    progress: int,
    attempt: int,
) -> None:
    await record(session, events, TaskEvent(task_id, account_id, kind, str(status), progress, utcnow(), attempt))


def listing_prompt(request: GenerateRequest) -> str:
    """One line for task lists: the prompt, or the shots' prompts joined."""
    if request.multi_shots:
        shots = " | ".join(shot.prompt for shot in request.multi_prompt)
        return f"{request.prompt.strip()} — {shots}" if request.prompt and request.prompt.strip() else shots
    return request.prompt or ""


async def submit(
    session: AsyncSession,
    account_id: str,
    key_id: str | None,
    request: GenerateRequest,
    max_attempts: int,
    events: EventHub | None = None,
) -> Task:
    """Debit the task's cost and insert it as QUEUED, in the caller's transaction."""
    cost = task_cost(request.mode, request.duration, request.sound)
    task_id = new_task_id()
    if not await accounts.debit_for_task(session, account_id, task_id, cost):
        have = await accounts.balance(session, account_id) or 0
        raise InsufficientCredits(f"this task costs {cost} credits and the balance is {have}")
    now = utcnow()
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    task = Task(
        id=task_id,
        account_id=account_id,
        key_id=key_id,
        status=TaskStatus.QUEUED,
        type=request.type,
        mode=request.mode,
        duration=request.duration,
        sound=request.sound,
        cost=cost,
        prompt=listing_prompt(request),
        request=request.echo,
        spec=spec_of(request),
        seed=seed,
        progress=0,
        attempt=0,
        max_attempts=max_attempts,
        created_at=now,
        updated_at=now,
    )
    await task_repo.insert(session, task)
    await _emit(session, events, task.id, account_id, "accepted", TaskStatus.QUEUED, 0, 0)
    return task


def spec_of(request: GenerateRequest) -> dict[str, Any]:
    """The normalised request the worker renders from (JSON-safe)."""
    spec = dataclasses.asdict(request)
    spec.pop("echo", None)
    spec["spec_version"] = SPEC_VERSION
    return spec


def request_of(spec: dict[str, Any]) -> GenerateRequest:
    """The request a stored spec describes, for every spec version ever stored (no version: 1)."""
    from happyhorse.contract import ElementInput, ShotPrompt

    data = dict(spec)
    version = data.pop("spec_version", 1)
    if version not in (1, 2):
        raise ValueError(f"task spec version {version!r} is newer than this server understands")
    data["multi_prompt"] = [ShotPrompt(**s) for s in data.get("multi_prompt", [])]
    data["elements"] = [ElementInput(**e) for e in data.get("elements", [])]
    return GenerateRequest(**data)


async def start(session: AsyncSession, task_id: str, worker_id: str, events: EventHub | None = None) -> Claim | None:
    """Start an attempt: QUEUED → RUNNING with a new attempt number; None if it was taken or ended."""
    claim = await task_repo.claim(session, task_id, worker_id)
    if claim is not None:
        task = await task_repo.get(session, task_id)
        account_id = task.account_id if task is not None else ""
        await _emit(session, events, task_id, account_id, "started", TaskStatus.RUNNING, 0, claim.attempt)
    return claim


async def progress(
    session: AsyncSession, task_id: str, account_id: str, attempt: int, percent: int, events: EventHub | None = None
) -> bool:
    """Record a running attempt's progress (and heartbeat); False when the attempt no longer owns the task."""
    if not await task_repo.set_progress(session, task_id, attempt, percent):
        return False
    await _emit(session, events, task_id, account_id, "progress", TaskStatus.RUNNING, percent, attempt)
    return True


async def heartbeat(session: AsyncSession, task_id: str, attempt: int) -> bool:
    """Keep a running attempt's heartbeat fresh (no state change, no event); False when it lost the task."""
    return await job_repo.touch(session, task_id, attempt)


async def succeed(
    session: AsyncSession,
    task_id: str,
    account_id: str,
    attempt: int,
    result: dict[str, Any],
    events: EventHub | None = None,
) -> bool:
    """RUNNING (this attempt) → SUCCESS with the result's fields; False when the attempt lost the task
    (retried elsewhere, failed or cancelled meanwhile): the caller then discards its result."""
    if not await task_repo.complete(session, task_id, attempt, result):
        return False
    await webhook_repo.enqueue_task_outcome(session, task_id, account_id, TaskStatus.SUCCESS)
    await _emit(session, events, task_id, account_id, "succeeded", TaskStatus.SUCCESS, 100, attempt)
    return True


async def fail_and_refund(
    session: AsyncSession, task_id: str, message: str, attempt: int | None = None, events: EventHub | None = None
) -> bool:
    """End a task FAILED and give its credits back; a no-op if it already ended or lost its attempt."""
    task = await task_repo.fail(session, task_id, message, attempt)
    if task is None:
        return False
    await accounts.refund_task(session, task.account_id, task.id, task.cost)
    log.info("task %s failed (attempt %s): %s; refunded %s", task_id, attempt, message, task.cost)
    await webhook_repo.enqueue_task_outcome(session, task.id, task.account_id, TaskStatus.FAILED)
    await _emit(session, events, task.id, task.account_id, "failed", TaskStatus.FAILED, task.progress, task.attempt)
    return True


async def cancel_and_refund(
    session: AsyncSession,
    task_id: str,
    account_id: str | None = None,
    message: str = CANCELLED_MESSAGE,
    events: EventHub | None = None,
) -> bool:
    """QUEUED or RUNNING → CANCELLED with a full refund (the ledger's refund key makes it once).

    One conditional UPDATE decides a race with ``succeed``: whichever commits first wins and the
    other matches no row. A running attempt notices (its fenced writes fail) and discards its result.
    With ``account_id``, only that account's task. False when the task had already ended.
    """
    task = await task_repo.cancel(session, task_id, message, account_id)
    if task is None:
        return False
    await accounts.refund_task(session, task.account_id, task.id, task.cost)
    log.info("task %s cancelled: %s; refunded %s", task_id, message, task.cost)
    await webhook_repo.enqueue_task_outcome(session, task.id, task.account_id, TaskStatus.CANCELLED)
    await _emit(
        session, events, task.id, task.account_id, "cancelled", TaskStatus.CANCELLED, task.progress, task.attempt
    )
    return True


async def requeue(session: AsyncSession, task: Task, reason: str, events: EventHub | None = None) -> bool:
    """RUNNING (the task's current attempt) → QUEUED for another attempt."""
    if not await task_repo.requeue(session, task.id, task.attempt):
        return False
    log.warning("task %s requeued after attempt %s: %s", task.id, task.attempt, reason)
    await _emit(session, events, task.id, task.account_id, "requeued", TaskStatus.QUEUED, 0, task.attempt)
    return True


async def retry_or_fail(session: AsyncSession, task: Task, reason: str, events: EventHub | None = None) -> str:
    """A RUNNING task whose worker is gone: back to the queue while attempts remain, else FAILED.

    Returns "requeued", "failed" or "unchanged".
    """
    if task.attempt < task.max_attempts:
        return "requeued" if await requeue(session, task, reason, events) else "unchanged"
    message = f"rendering did not finish after {task.attempt} attempts ({reason})"
    return "failed" if await fail_and_refund(session, task.id, message, task.attempt, events) else "unchanged"
