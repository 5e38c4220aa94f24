"""The SDK stays light: importing and using it never loads the server stack.

Run in a fresh interpreter, since this test process may already have imported anything.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["fastapi", "sqlalchemy", "starlette", "torch", "numpy", "av", "PIL", "uvicorn", "pydantic", "alembic"]

SCRIPT = """
import json, sys
import httpx
import happyhorse
from happyhorse import Client, AsyncClient, Task, Shot, Element

def handler(request):
    if request.url.path == "/api/credits":
        return httpx.Response(200, json={"code": 200, "message": "success", "data": {"balance": 5}})
    return httpx.Response(200, json={"code": 200, "message": "success",
                                     "data": {"task_id": "n92abcdefghijkl", "status": "SUCCESS",
                                              "response": {"resultUrls": ["http://x.test/v.mp4"]}}})

client = Client("k", "http://x.test", transport=httpx.MockTransport(handler), sleep=lambda s: None)
assert client.credits() == 5
assert client.generate_and_wait("a horse", multi_prompt=[Shot("a", 3)]).video_url == "http://x.test/v.mp4"
AsyncClient("k", "http://x.test")
if "--cli" in sys.argv:
    import happyhorse.client.cli
heavy = {HEAVY!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def _loaded_heavy_modules(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("{HEAVY!r}", repr(HEAVY)), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_importing_and_using_the_sdk_loads_no_server_module() -> None:
    assert _loaded_heavy_modules() == []


def test_the_client_cli_module_loads_no_server_module() -> None:
    assert _loaded_heavy_modules("--cli") == []
