"""Webhooks: the account's endpoints (add, remove, send a test event), its signing secret, and every
delivery attempt with "Redeliver"."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from happyhorse.errors import InvalidRequest
from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.pages import notice
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import webhooks as repo
from happyhorse.store.models import User, WebhookAttempt
from happyhorse.webhooks.signing import new_secret
from happyhorse.webhooks.urls import check_webhook_url

router = APIRouter()


async def _page(
    request: Request, user: User, *, error: str | None = None, url: str = "", status_code: int = 200
) -> Response:
    async with services(request).db.write() as session:  # write: the secret is made on first view
        secret = await repo.secret_for(session, user.account_id, new_secret)
        endpoints = await repo.endpoints_of(session, user.account_id)
        deliveries = await repo.deliveries_of(session, user.account_id)
        attempts = await repo.attempts_of(session, [d.id for d in deliveries])
    by_delivery: dict[str, list[WebhookAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_delivery[attempt.delivery_id].append(attempt)
    by_endpoint = defaultdict(list)
    for delivery in deliveries:
        by_endpoint[delivery.endpoint_id].append(delivery)
    return render(
        request,
        "webhooks.html",
        {
            "secret": secret,
            "endpoints": endpoints,
            "by_endpoint": by_endpoint,
            "attempts": by_delivery,
            "callbacks": by_endpoint.get(None, []),
            "error": error,
            "url": url,
            "notice": notice(request),
        },
        status_code=status_code,
        active="webhooks",
    )


@router.get("/dashboard/webhooks")
async def webhooks_page(request: Request, user: User = Depends(require_user)) -> Response:
    return await _page(request, user)


@router.post("/dashboard/webhooks")
async def add_endpoint(request: Request, user: User = Depends(require_user)) -> Response:
    url = str((await request.form()).get("url") or "").strip()
    try:
        checked = check_webhook_url(url, field="URL", allow_private=services(request).settings.allow_private_urls)
    except InvalidRequest as exc:
        return await _page(request, user, error=exc.message, url=url, status_code=400)
    async with services(request).db.write() as session:
        await repo.add_endpoint(session, user.account_id, checked)
    return RedirectResponse("/dashboard/webhooks?notice=webhook-added", status_code=303)


@router.post("/dashboard/webhooks/{endpoint_id}/remove")
async def remove_endpoint(request: Request, endpoint_id: str, user: User = Depends(require_user)) -> Response:
    async with services(request).db.write() as session:
        await repo.remove_endpoint(session, endpoint_id, account_id=user.account_id)
    return RedirectResponse("/dashboard/webhooks?notice=webhook-removed", status_code=303)


@router.post("/dashboard/webhooks/{endpoint_id}/test")
async def send_test(request: Request, endpoint_id: str, user: User = Depends(require_user)) -> Response:
    async with services(request).db.write() as session:
        endpoint = await repo.get_endpoint(session, endpoint_id)
        if endpoint is not None and endpoint.account_id == user.account_id:
            await repo.enqueue_test_event(session, user.account_id, endpoint.id, endpoint.url)
    services(request).deliverer.poke()
    return RedirectResponse("/dashboard/webhooks?notice=webhook-test-sent", status_code=303)


@router.post("/dashboard/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, delivery_id: str, user: User = Depends(require_user)) -> Response:
    async with services(request).db.write() as session:
        await repo.redeliver(session, delivery_id, account_id=user.account_id)
    services(request).deliverer.poke()
    return RedirectResponse("/dashboard/webhooks?notice=webhook-redelivered", status_code=303)


@router.post("/dashboard/webhooks/secret/rotate")
async def rotate_secret(request: Request, user: User = Depends(require_user)) -> Response:
    async with services(request).db.write() as session:
        await repo.secret_for(session, user.account_id, new_secret, rotate=True)
    return RedirectResponse("/dashboard/webhooks?notice=webhook-secret-rotated", status_code=303)
