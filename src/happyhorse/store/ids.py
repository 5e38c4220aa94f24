"""Identifiers and secrets: task ids, account/key ids, API keys and their hashes."""

from __future__ import annotations

import hashlib
import secrets
import string

_TASK_ALPHABET = string.ascii_lowercase + string.digits
API_KEY_PREFIX = "hh_"


def new_task_id() -> str:
    """``n92`` + 20 random lowercase letters/digits (~103 bits): unguessable, per the contract."""
    return "n92" + "".join(secrets.choice(_TASK_ALPHABET) for _ in range(20))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Keys carry 256 random bits, so a fast hash is enough (no brute force is feasible)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The part of a key that is safe to show in listings."""
    return key[:10]
