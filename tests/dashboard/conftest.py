"""Fixtures for the dashboard tests: Debian's chromium driven by Playwright, signed-in pages, screenshots."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, SCREENSHOTS


# Module scope, not session: Playwright's sync API keeps an event loop running on this thread while
# it is open, and pytest-asyncio's tests in later directories refuse to start under a running loop.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=PHONE)``: a page in a fresh context (own cookies), closed after the test."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, device_scale_factor=1)
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "Revoke this key?" confirmations
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shoot() -> Callable[..., None]:
    """Save a screenshot as test-artifacts/screenshots/<name>.png (``full_page=False``: the viewport only,
    for pages with a fixed bar, which a full-page capture draws mid-page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str, *, full_page: bool = True) -> None:
        page.evaluate("window.scrollTo(0, 0)")  # sticky parts are drawn where the scroll left them
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    return save
