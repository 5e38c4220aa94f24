"""The task state machine. Functions take the caller's session and never commit: the caller's
transaction makes a debit and its task row (or a failure and its refund) one atomic step."""

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
from happyhorse.store import tasks as task_repo
from happyhorse.store.ids import new_task_id
from happyhorse.store.models import Task, utcnow

log = logging.getLogger("happyhorse.tasks")

MAX_SEED = 2_147_483_647


def listing_prompt(request: GenerateRequest) -> str:
    """One line for task lists: the prompt, or the shots' prompts joined."""
    if request.multi_shots:
        shots = " | ".join(shot.prompt for shot in request.multi_prompt)
        return f"{request.prompt.strip()} — {shots}" if request.prompt and request.prompt.strip() else shots
    return request.prompt or ""


async def submit(session: AsyncSession, account_id: str, key_id: str | None, request: GenerateRequest,
                 max_attempts: int) -> Task:
    """Debit the task's cost and insert it as QUEUED, in the caller's transaction."""
    cost = task_cost(request.mode, request.duration, request.sound)
    task_id = new_task_id()
    if not await accounts.debit_for_task(session, account_id, task_id, cost):
        have = await accounts.balance(session, account_id) or 0
        raise InsufficientCredits(f"this task costs {cost} credits and the balance is {have}")
    now = utcnow()
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    task = Task(
        id=task_id, account_id=account_id, key_id=key_id, status="QUEUED", type=request.type,
        mode=request.mode, duration=request.duration, sound=request.sound, cost=cost,
        prompt=listing_prompt(request), request=request.echo, spec=spec_of(request), seed=seed,
        progress=0, attempt=0, max_attempts=max_attempts, created_at=now, updated_at=now,
    )
    await task_repo.insert(session, task)
    return task


def spec_of(request: GenerateRequest) -> dict[str, Any]:
    """The normalised request the worker renders from (JSON-safe)."""
    spec = dataclasses.asdict(request)
    spec.pop("echo", None)
    return spec


def request_of(spec: dict[str, Any]) -> GenerateRequest:
    from happyhorse.contract import ElementInput, ShotPrompt

    data = dict(spec)
    data["multi_prompt"] = [ShotPrompt(**s) for s in data.get("multi_prompt", [])]
    data["elements"] = [ElementInput(**e) for e in data.get("elements", [])]
    return GenerateRequest(**data)


async def fail_and_refund(session: AsyncSession, task_id: str, message: str, attempt: int | None = None) -> bool:
    """End a task FAILED and give its credits back; a no-op if it already ended or lost its attempt."""
    task = await task_repo.fail(session, task_id, message, attempt)
    if task is None:
        return False
    await accounts.refund_task(session, task.account_id, task.id, task.cost)
    log.info("task %s failed (attempt %s): %s; refunded %s", task_id, attempt, message, task.cost)
    return True


async def retry_or_fail(session: AsyncSession, task: Task, reason: str) -> str:
    """A RUNNING task whose worker is gone: back to the queue while attempts remain, else FAILED.

    Returns "requeued", "failed" or "unchanged".
    """
    if task.attempt < task.max_attempts:
        if await task_repo.requeue(session, task.id, task.attempt):
            log.warning("task %s requeued after attempt %s: %s", task.id, task.attempt, reason)
            return "requeued"
        return "unchanged"
    message = f"rendering did not finish after {task.attempt} attempts ({reason})"
    return "failed" if await fail_and_refund(session, task.id, message, task.attempt) else "unchanged"
