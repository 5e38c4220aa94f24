"""The sync client is written from the async one: one definition of every call and parameter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from happyhorse import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_sync_client_is_what_the_generator_writes() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync_client.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_both_clients_refuse_an_unknown_generate_argument() -> None:
    never = httpx.MockTransport(lambda request: pytest.fail("nothing may be sent"))
    with pytest.raises(TypeError, match="styel"):
        Client("k", "http://x.test", transport=never).generate("a horse", styel="noir")  # type: ignore[call-arg]

    async def call() -> None:
        async with AsyncClient("k", "http://x.test", transport=httpx.MockTransport(lambda r: pytest.fail("sent"))) as c:
            await c.generate("a horse", styel="noir")  # type: ignore[call-arg]

    import asyncio

    with pytest.raises(TypeError, match="styel"):
        asyncio.run(call())
