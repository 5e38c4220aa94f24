"""Dashboard building blocks in-process: session cookies, CSRF tokens, redirects, upload URL
matching, and the ``happyhorse users`` commands."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import Request, Response
from typer.testing import CliRunner, Result

from happyhorse.cli import app as cli_app
from happyhorse.config import Settings
from happyhorse.server.dashboard import csrf, sessions
from happyhorse.server.dashboard.routes_auth import safe_next
from happyhorse.storage.uploads import DiskUploads, own_upload_name

KEY = b"k" * 32
NAME = "A" * 31 + "b.png"


def request_for(url: str) -> Request:
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": (host, 443 if scheme == "https" else 80),
            "path": "/" + path,
            "headers": [(b"host", host.encode())],
            "query_string": b"",
        }
    )


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "secret_key": "test-secret", **overrides}
    return Settings(**values)  # type: ignore[arg-type]


def test_session_round_trip_and_refusals() -> None:
    session = sessions.new_session("user_1", "$argon2id$hash", KEY, ttl=60)
    value = sessions.encode(session, KEY)
    assert sessions.decode(value, KEY) == session
    assert sessions.decode(value, b"another key" * 3) is None
    payload, _, signature = value.partition(".")
    assert sessions.decode(f"{payload}x.{signature}", KEY) is None
    assert sessions.decode(value[:-3] + "abc", KEY) is None
    assert sessions.decode("garbage", KEY) is None
    assert sessions.decode(value, KEY, now=time.time() + 61) is None  # expired
    other = sessions.new_session("user_1", "$argon2id$hash", KEY, ttl=60)
    assert other.sid != session.sid  # every sign-in gets a fresh CSRF seed
    assert sessions.password_fingerprint("$argon2id$new", KEY) != session.pw


@pytest.mark.parametrize(
    ("url", "public_url", "secure"),
    [
        ("http://example.com/dashboard/login", None, False),
        ("https://example.com/dashboard/login", None, True),
        ("http://10.0.0.5/dashboard/login", "https://videos.example.com", True),  # TLS ends at a proxy
    ],
)
def test_cookies_are_secure_over_https(tmp_path: Path, url: str, public_url: str | None, secure: bool) -> None:
    response = Response()
    session = sessions.new_session("u", "h", KEY, ttl=60)
    sessions.start(response, request_for(url), settings(tmp_path, public_url=public_url), session)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ("Secure" in cookie) is secure


def test_csrf_tokens_are_bound_to_their_seed(tmp_path: Path) -> None:
    config = settings(tmp_path)
    assert csrf.token_for("seed-a", config) == csrf.token_for("seed-a", config)
    assert csrf.token_for("seed-a", config) != csrf.token_for("seed-b", config)
    assert csrf.token_for("seed-a", config) != csrf.token_for("seed-a", settings(tmp_path / "x", secret_key="other"))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/keys", "/dashboard/keys"),
        ("/dashboard/tasks?page=2", "/dashboard/tasks?page=2"),
        ("", "/dashboard"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboard//evil.example", "/dashboard"),
        ("/dashboard\\..\\x", "/dashboard"),
        ("/api/credits", "/dashboard"),
    ],
)
def test_sign_in_redirects_stay_inside_the_dashboard(target: str, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        (f"http://127.0.0.1:8000/uploads/{NAME}", True),
        (f"http://localhost:8000/uploads/{NAME}", True),
        (f"https://videos.example.com/uploads/{NAME}", True),
        # Whatever host the client reached us by (a LAN address, a hostname, a proxy): the path and the file decide.
        (f"http://192.168.1.20:8000/uploads/{NAME}", True),
        (f"http://studio-box.lan:8000/uploads/{NAME}", True),
        (f"http://evil.example/uploads/{NAME}", True),  # our own file: nothing GET /uploads/ would not give
        (f"http://127.0.0.1:8000/uploads/{'B' * 31}c.png", False),  # our shape, but no such file here
        ("http://127.0.0.1:99999/uploads/" + NAME, False),
        (f"http://127.0.0.1:8000/uploads/{NAME}?x=1", False),
        (f"http://127.0.0.1:8000/uploads/{NAME}#top", False),
        (f"http://user:pw@127.0.0.1:8000/uploads/{NAME}", False),
        (f"http://127.0.0.1:8000/files/{NAME}", False),
        (f"http://127.0.0.1:8000/x/uploads/{NAME}", False),
        ("http://127.0.0.1:8000/uploads/../secret.key", False),
        ("http://127.0.0.1:8000/uploads/secret.key", False),
        ("http://127.0.0.1:8000/uploads/%2e%2e%2fsecret.key", False),
        (f"ftp://127.0.0.1:8000/uploads/{NAME}", False),
        ("http://[::1", False),
    ],
)
def test_only_exact_upload_urls_of_this_server_are_read_from_storage(tmp_path: Path, url: str, ours: bool) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / NAME).write_bytes(b"an upload")
    name = own_upload_name(url)
    found = DiskUploads(tmp_path / "uploads").read(name) if name is not None else None
    assert (found == b"an upload") if ours else found is None


def invoke(*args: str) -> Result:
    """Run ``happyhorse ARGS`` in-process, on a thread of its own: the CLI calls asyncio.run(), which
    refuses to start inside the event loop Playwright's sync API keeps running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(CliRunner().invoke, cli_app, list(args)).result()


def test_users_cli_creates_lists_and_resets_passwords(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path)]
    made = invoke(
        "users",
        "create",
        "--email",
        " Lee@Example.com",
        "--password",
        "long enough",
        "--admin",
        "--credits",
        "70",
        "--json",
        *where,
    )
    assert made.exit_code == 0, made.output
    info = json.loads(made.output)
    assert (info["email"], info["role"]) == ("lee@example.com", "admin")

    again = invoke("users", "create", "--email", "lee@example.com", "--password", "long enough", *where)
    assert again.exit_code != 0 and "already exists" in again.output
    weak = invoke("users", "create", "--email", "x@example.com", "--password", "short", *where)
    assert weak.exit_code != 0 and "at least 8" in weak.output
    joined = invoke(
        "users",
        "create",
        "--email",
        "ann@example.com",
        "--password",
        "long enough",
        "--account",
        info["account"],
        "--json",
        *where,
    )
    assert json.loads(joined.output)["account"] == info["account"]

    listed = json.loads(invoke("users", "list", "--json", *where).output)
    assert [u["email"] for u in listed] == ["lee@example.com", "ann@example.com"]
    reset = invoke("users", "set-password", "--email", "ANN@example.com", "--password", "brand new pw", *where)
    assert reset.exit_code == 0 and "sessions have ended" in reset.output
