"""Write the SDK's synchronous client from its asynchronous one: one definition of every call.

``src/happyhorse/client/_async.py`` is the source; ``_sync.py`` is generated from it by the token
rewrites below (``async def`` → ``def``, ``await x`` → ``x``, ``aread`` → ``read``…), so adding a
request field or a method touches the SDK in one place. ``make lint`` runs ``--check``, which fails
when the checked-in ``_sync.py`` is not what this script writes.

    python scripts/unasync_client.py          # regenerate _sync.py
    python scripts/unasync_client.py --check  # exit 1 if _sync.py is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parent.parent / "src" / "happyhorse" / "client"
SOURCE = CLIENT / "_async.py"
TARGET = CLIENT / "_sync.py"

HEADER = "# Generated from _async.py by scripts/unasync_client.py: edit that file, then run `make sync-client`.\n"

# Each is (pattern, replacement), applied in order: imports and tokens, then the docstrings' own phrases.
REWRITES: list[tuple[str, str]] = [
    (r"^import asyncio\n", ""),
    (r"AsyncIterator, Awaitable, Callable", "Callable, Iterator"),
    (r"Callable\[\[float\], Awaitable\[None\]\]", "Callable[[float], None]"),
    (r"asyncio\.sleep", "time.sleep"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncClient\b", "Client"),
    (r"\basync (def|with|for) ", r"\1 "),
    (r"\bawait ", ""),
    (r"\.aread\(", ".read("),
    (r"\.aiter_(lines|bytes)\(", r".iter_\1("),
    (r"\baclose\b", "close"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    # an async generator re-yields item by item; a generator says `yield from`
    (r"^(\s*)for (\w+) in (.+):\n\s+yield \2\n", r"\1yield from \3\n"),
    (
        r"The asynchronous client; the synchronous one \(``_sync.py``\) is generated from this file\.",
        "The synchronous client, generated from the asynchronous one (``_async.py``).",
    ),
    (
        r"A HappyHorse 1\.0 API client for asyncio; :class:`Client` has the same methods, not awaited\.",
        "A HappyHorse 1.0 API client; :class:`AsyncClient` has the same methods, awaited.",
    ),
]


def unasync(source: str) -> str:
    for pattern, replacement in REWRITES:
        source = re.sub(pattern, replacement, source, flags=re.MULTILINE)
    return HEADER + source


def main(argv: list[str]) -> int:
    generated = unasync(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != generated:
            print(f"{TARGET} is stale: run `make sync-client` (scripts/unasync_client.py)", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
