"""A multi-shot task's card on the dashboard's Tasks page shows the task's seed (the one /api/status reports
and that reproduces the video), not a per-shot seed."""

from __future__ import annotations

import re

import pytest
from dashboard_helpers import create_user, session_client

from harness import wait_for_task

pytestmark = pytest.mark.e2e


def test_multi_shot_card_shows_the_task_seed(live_server) -> None:
    user = create_user(live_server, "sam@example.com", credits=50_000)
    key = live_server.create_key(name="cards", account=user["account"])
    body = {
        "model": "happyhorse-1.0/video",
        "multi_shots": True,
        "sound": False,
        "seed": 4242,
        "multi_prompt": [{"prompt": "a door opens", "duration": 2}, {"prompt": "a cat walks in", "duration": 2}],
    }
    with live_server.client(key) as api:
        task_id = api.post("/api/generate", json=body).json()["data"]["task_id"]
        data = wait_for_task(api, task_id)
    assert data["status"] == "SUCCESS" and data["seed"] == 4242, data
    client, _ = session_client(live_server, "sam@example.com")
    page = client.get("/dashboard/tasks").text
    card = page[page.index(f'id="{task_id}"') :]
    card = card[: card.index("</li>")]
    seeds = re.findall(r"<dt>Seed</dt><dd[^>]*>\s*([^<]*?)\s*</dd>", card)
    assert seeds == ["4242"], seeds
