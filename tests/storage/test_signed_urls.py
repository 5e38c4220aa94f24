"""A result URL is signed once and reused for a small part of its lifetime, never past it."""

from __future__ import annotations

from pathlib import Path

import pytest

from happyhorse.storage import signed_urls
from happyhorse.storage.local import LocalResultStore
from happyhorse.storage.signed_urls import REUSE_MAX_S, SignedUrls


def test_polls_get_the_same_url_until_it_is_due_for_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(signed_urls.time, "monotonic", lambda: clock[0])
    signed: list[int] = []

    def sign() -> str:
        signed.append(1)
        return f"u{len(signed)}"

    urls = SignedUrls(ttl_s=100)  # reused for 5 s
    assert [urls.get("a.mp4", "http://h", sign) for _ in range(3)] == ["u1", "u1", "u1"]
    assert urls.get("a.mp4", "http://other", sign) == "u2"  # another host: its own URL
    clock[0] += 4.9
    assert urls.get("a.mp4", "http://h", sign) == "u1"
    clock[0] += 0.2
    assert urls.get("a.mp4", "http://h", sign) == "u3"  # due: signed afresh


def test_a_day_long_url_is_reused_for_at_most_five_minutes() -> None:
    assert SignedUrls(ttl_s=24 * 3600).reuse_s == REUSE_MAX_S == 300


def test_the_local_store_verifies_the_url_it_hands_out_again(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path, b"k" * 32, ttl_seconds=3600)
    url = store.url("a.mp4", "http://h")
    assert store.url("a.mp4", "http://h") == url
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    assert store.verify("a.mp4", query["expires"], query["signature"])
    store.delete("a.mp4")  # a deleted result is never handed its old URL again
    assert store.urls.get("a.mp4", "http://h", lambda: "fresh") == "fresh"
