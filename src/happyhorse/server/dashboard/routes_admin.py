"""Admin: every account's balance, credit grants to any account, and adding users."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from happyhorse.server.dashboard.auth import hash_password, password_problem, require_admin
from happyhorse.server.dashboard.pages import notice
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import accounts
from happyhorse.store import users as user_repo
from happyhorse.store.models import Account, User

router = APIRouter()
GRANT_MAX = 10**12  # a typo guard, far above any real grant
NOTE_MAX = 200
NEW_ACCOUNT = "__new__"


async def _admin_page(
    request: Request,
    *,
    grant_error: str | None = None,
    user_error: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    async with services(request).db.read() as session:
        all_accounts = await accounts.list_accounts(session)
        all_users = await user_repo.list_users(session)
    names = {a.id: a.name for a in all_accounts}
    members: dict[str, int] = {}
    for u in all_users:
        members[u.account_id] = members.get(u.account_id, 0) + 1
    return render(
        request,
        "admin.html",
        {
            "accounts": all_accounts,
            "users": all_users,
            "account_names": names,
            "members": members,
            "grant_error": grant_error,
            "user_error": user_error,
            "form": form or {},
            "notice": notice(request),
            "new_account": NEW_ACCOUNT,
            "clean_url": "/dashboard/admin" if request.method == "POST" else None,
        },
        status_code=status_code,
        active="admin",
    )


@router.get("/dashboard/admin")
async def admin_page(request: Request, admin: User = Depends(require_admin)) -> Response:
    return await _admin_page(request)


@router.post("/dashboard/admin/grant")
async def grant(request: Request, admin: User = Depends(require_admin)) -> Response:
    form = await request.form()
    account_id = str(form.get("account_id") or "")
    note = str(form.get("note") or "").strip()[:NOTE_MAX]
    raw_amount = str(form.get("amount") or "").strip().replace(",", "").replace("_", "")
    try:
        amount = int(raw_amount)
    except ValueError:
        amount = 0
    if amount == 0 or abs(amount) > GRANT_MAX:
        return await _admin_page(
            request,
            grant_error="Enter a whole number of credits (negative to remove).",
            form={"account_id": account_id, "amount": raw_amount, "note": note},
            status_code=400,
        )
    async with services(request).db.write() as session:
        if await session.get(Account, account_id) is None:
            found = None
        else:
            found = await accounts.grant_credits(
                session, account_id, amount, note=f"{note or 'granted'} (by {admin.email})"[:400]
            )
    if found is None:
        return await _admin_page(request, grant_error="Choose an account.", status_code=400)
    return RedirectResponse("/dashboard/admin?notice=granted", status_code=303)


@router.post("/dashboard/admin/users")
async def add_user(request: Request, admin: User = Depends(require_admin)) -> Response:
    form = await request.form()
    email = user_repo.normalise_email(str(form.get("email") or ""))
    password = str(form.get("password") or "")
    role = "admin" if form.get("role") == "admin" else "member"
    account_id = str(form.get("account_id") or NEW_ACCOUNT)
    account_name = str(form.get("account_name") or "").strip()[:200]
    kept = {"email": email, "role": role, "account_id": account_id, "account_name": account_name}

    async def problem(message: str) -> Response:
        return await _admin_page(request, user_error=message, form=kept, status_code=400)

    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        return await problem("Enter the person's email address.")
    if (weak := password_problem(password)) is not None:
        return await problem(f"Password: {weak}")
    password_hash = await asyncio.to_thread(hash_password, password)  # argon2 is slow by design
    async with services(request).db.write() as session:
        if await user_repo.find_by_email(session, email) is not None:
            return await problem("A user with that email already exists.")
        if account_id == NEW_ACCOUNT:
            account_id = (await accounts.create_account(session, account_name or email)).id
        elif await session.get(Account, account_id) is None:
            return await problem("Choose an account.")
        await user_repo.create_user(session, account_id, email, password_hash, role)
    return RedirectResponse("/dashboard/admin?notice=user-added", status_code=303)
