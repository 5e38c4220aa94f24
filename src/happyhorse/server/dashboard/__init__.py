"""The dashboard: sign-in, API keys, credits, tasks and the API Playground, served under /dashboard.

Server-rendered Jinja2 pages plus a little vanilla JavaScript from ``static/`` (no build step, no
CDN). ``create_app`` calls ``mount_dashboard`` when this package is present.

    routes_auth        /dashboard/login, /dashboard/logout
    routes_home        /, /dashboard (overview)
    routes_keys        /dashboard/keys
    routes_credits     /dashboard/credits
    routes_tasks       /dashboard/tasks, /dashboard/tasks/status.json
    routes_playground  /dashboard/playground
    routes_admin       /dashboard/admin (accounts, grants, users)
    routes_webhooks    /dashboard/webhooks (endpoints, signing secret, deliveries, redeliver)

Every router is mounted behind ``csrf_guard``, so no state-changing route can forget it, and behind
``form_guard``, so no form value a database cannot store (a NUL) reaches a route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package is imported by the CLI (for ``users``): keep that import light
    from fastapi import FastAPI

    from happyhorse.config import Settings


def mount_dashboard(app: FastAPI, settings: Settings) -> None:
    from fastapi import Depends
    from fastapi.staticfiles import StaticFiles

    from happyhorse.server.dashboard import (
        errors,
        routes_admin,
        routes_auth,
        routes_credits,
        routes_home,
        routes_keys,
        routes_playground,
        routes_tasks,
        routes_webhooks,
    )
    from happyhorse.server.dashboard.csrf import csrf_guard
    from happyhorse.server.dashboard.forms import form_guard
    from happyhorse.server.dashboard.templating import STATIC_DIR, STATIC_PREFIX

    routers = (
        routes_auth,
        routes_home,
        routes_keys,
        routes_credits,
        routes_tasks,
        routes_playground,
        routes_admin,
        routes_webhooks,
    )
    for module in routers:
        app.include_router(
            module.router, dependencies=[Depends(csrf_guard), Depends(form_guard)], include_in_schema=False
        )
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    errors.install(app)
