"""The API Playground: a form for every /api/generate field, driven by static/playground.js.

The browser calls the real ``/api/upload``, ``/api/generate`` and ``/api/status`` with the user's
API key, exactly as the curl preview shows, so what works here works from their code. The limits
and the credit rates are rendered from the server's own tables (contract, pricing) into the page,
so the form and the cost estimate cannot drift from what the API enforces.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from happyhorse import contract
from happyhorse.pricing import RATES
from happyhorse.server.dashboard.auth import require_user
from happyhorse.server.dashboard.pages import base_url
from happyhorse.server.dashboard.templating import render
from happyhorse.server.services import services
from happyhorse.store import accounts
from happyhorse.store.models import User

router = APIRouter()


def playground_config(request: Request) -> dict[str, Any]:
    rates: dict[str, dict[str, int]] = {}
    for (mode, sound), rate in RATES.items():
        rates.setdefault(mode, {})["true" if sound else "false"] = rate
    return {
        "model": contract.MODEL_NAME,
        "baseUrl": base_url(request),
        "rates": rates,
        "modes": list(contract.MODES),
        "aspectRatios": list(contract.ASPECT_RATIOS),
        "defaultAspectRatio": contract.DEFAULT_ASPECT_RATIO,
        "duration": list(contract.DURATION_RANGE),
        "defaultDuration": contract.DEFAULT_DURATION,
        "shotDuration": list(contract.SHOT_DURATION_RANGE),
        "cfgScale": list(contract.CFG_SCALE_RANGE),
        "defaultCfgScale": contract.DEFAULT_CFG_SCALE,
        "maxShots": contract.MAX_SHOTS,
        "promptMax": contract.PROMPT_MAX,
        "shotPromptMax": contract.SHOT_PROMPT_MAX,
        "maxElements": contract.MAX_ELEMENTS,
        "elementUrls": list(contract.ELEMENT_URLS_RANGE),
        "maxImages": {"single": contract.MAX_IMAGES, "multi": contract.MAX_IMAGES_MULTI_SHOT},
        "seedMax": contract.SEED_MAX,
        "uploadMaxBytes": services(request).settings.fetch_max_bytes,
    }


@router.get("/dashboard/playground")
async def playground(request: Request, user: User = Depends(require_user)) -> Response:
    async with services(request).db.read() as session:
        balance = await accounts.balance(session, user.account_id)
    return render(
        request, "playground.html", {"config": playground_config(request), "balance": balance or 0}, active="playground"
    )
