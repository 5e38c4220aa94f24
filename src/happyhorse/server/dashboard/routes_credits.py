"""Credits: the account's balance and its ledger (grants, and per task its debit and any refund)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from happyhorse.contract import MODES
from happyhorse.pricing import RATES, task_cost
from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import accounts
from happyhorse.store.models import Account, User

router = APIRouter()
LEDGER_ROWS = 200


@router.get("/dashboard/credits")
async def credits_page(request: Request, user: User = Depends(require_user)) -> Response:
    async with services(request).db.read() as session:
        account = await session.get(Account, user.account_id)
        entries = await accounts.ledger(session, user.account_id, limit=LEDGER_ROWS)
    granted = sum(e.amount for e in entries if e.kind == "grant")
    spent = -sum(e.amount for e in entries if e.kind in ("debit", "refund"))
    return render(
        request,
        "credits.html",
        {
            "account": account,
            "entries": entries,
            "granted": granted,
            "spent": spent,
            "rows_limit": LEDGER_ROWS,
            "example_cost": task_cost("pro", 5, True),
            "rate_rows": [(mode, RATES[(mode, False)], RATES[(mode, True)]) for mode in MODES],
        },
        active="credits",
    )
