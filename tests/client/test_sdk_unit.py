"""The SDK against httpx.MockTransport: request bodies, typed errors, retries, download."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import happyhorse
from happyhorse import (
    APIConnectionError,
    APIError,
    AsyncClient,
    Client,
    Element,
    HappyHorseError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    RateLimited,
    ServerError,
    Shot,
    Task,
    TaskFailed,
    TaskNotFound,
)


def envelope(data: dict[str, Any] | None, status: int = 200, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"code": status, "message": "success" if status == 200 else "bad", "data": data}
    body.update(extra)
    return httpx.Response(status, json=body)


def error(status: int, code: str, message: str = "bad", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"code": status, "message": message, "error_code": code, "data": None}
    return httpx.Response(status, json=body, headers=headers)


ACCEPTED = {"task_id": "n92abcdefghijkl", "status": "IN_PROGRESS"}
DONE = {
    "task_id": "n92abcdefghijkl",
    "status": "SUCCESS",
    "consumed_credits": 400,
    "created_at": "2026-04-08T10:30:00Z",
    "type": "text-to-video",
    "request": {"model": "happyhorse-1.0/video", "prompt": "a horse", "duration": 5},
    "response": {"resultUrls": ["http://cdn.test/videos/abc.mp4"]},
    "error_message": None,
    "seed": 42,
}


class Recorder:
    """A MockTransport handler answering from a script and recording the requests."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script: Iterator[httpx.Response | Exception] = iter(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = next(self.script)
        if isinstance(item, Exception):
            raise item
        return item

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


def client_for(recorder: Recorder, **kwargs: Any) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    client = Client(
        "hh_test_key", "http://api.test", transport=httpx.MockTransport(recorder), sleep=sleeps.append, **kwargs
    )
    return client, sleeps


# -- configuration ------------------------------------------------------------------------------


def test_version_and_exports() -> None:
    assert happyhorse.__version__ == "0.1.0"
    from happyhorse.client._base import VERSION

    assert happyhorse.__version__ == VERSION
    for name in ("Client", "AsyncClient", "Task", "Shot", "Element", "TaskFailed", "WaitTimeout"):
        assert name in happyhorse.__all__


def test_key_and_base_url_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAPPYHORSE_API_KEY", "from-env")
    monkeypatch.setenv("HAPPYHORSE_BASE_URL", "http://env.test/")
    client = Client()
    assert client.api_key == "from-env"
    assert client.base_url == "http://env.test"
    monkeypatch.delenv("HAPPYHORSE_BASE_URL")
    assert Client().base_url == "https://happyhorse.app"
    assert Client("explicit", "http://x.test").api_key == "explicit"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAPPYHORSE_API_KEY", raising=False)
    with pytest.raises(HappyHorseError, match="HAPPYHORSE_API_KEY"):
        Client()


# -- requests -----------------------------------------------------------------------------------


def test_generate_sends_only_given_fields_with_bearer_auth() -> None:
    rec = Recorder(envelope(ACCEPTED))
    client, _ = client_for(rec)
    task = client.generate("a horse", mode="pro", duration=5, aspect_ratio="9:16", cfg_scale=0.7, seed=7)
    request = rec.requests[0]
    assert request.method == "POST" and request.url == "http://api.test/api/generate"
    assert request.headers["Authorization"] == "Bearer hh_test_key"
    assert rec.bodies()[0] == {
        "model": "happyhorse-1.0/video",
        "prompt": "a horse",
        "mode": "pro",
        "duration": 5,
        "aspect_ratio": "9:16",
        "cfg_scale": 0.7,
        "seed": 7,
        "sound": True,
    }
    assert task.task_id == "n92abcdefghijkl" and task.status == "IN_PROGRESS"
    assert task.request["prompt"] == "a horse"  # what we sent, since generate echoes none
    assert task.progress is None and task.video_url is None


def test_generate_multi_shot_sends_multi_shots_and_sound_explicitly() -> None:
    rec = Recorder(envelope(ACCEPTED))
    client, _ = client_for(rec)
    client.generate(
        multi_prompt=[Shot("a: horse", 3), {"prompt": "a rider", "duration": 4}],
        elements=[
            Element("dog", ["http://i.test/1.png", "http://i.test/2.png"]),
            {"name": "cat", "element_input_urls": ["u1", "u2"], "description": "grey"},
        ],
        image_urls=["http://i.test/first.png"],
        negative_prompt="blur",
    )
    body = rec.bodies()[0]
    assert body["multi_shots"] is True and body["sound"] is True
    assert "prompt" not in body and "duration" not in body
    assert body["multi_prompt"] == [{"prompt": "a: horse", "duration": 3}, {"prompt": "a rider", "duration": 4}]
    assert body["happyhorse_elements"] == [
        {"name": "dog", "element_input_urls": ["http://i.test/1.png", "http://i.test/2.png"]},
        {"name": "cat", "element_input_urls": ["u1", "u2"], "description": "grey"},
    ]
    assert body["image_urls"] == ["http://i.test/first.png"]
    assert body["negative_prompt"] == "blur"


def test_generate_sound_false_is_sent() -> None:
    rec = Recorder(envelope(ACCEPTED))
    client, _ = client_for(rec)
    client.generate("quiet", sound=False)
    assert rec.bodies()[0]["sound"] is False


def test_status_parses_every_field() -> None:
    rec = Recorder(envelope(DONE | {"progress": 100}))
    client, _ = client_for(rec)
    task = client.status("n92abcdefghijkl")
    assert rec.requests[0].url.params["task_id"] == "n92abcdefghijkl"
    assert task.status == "SUCCESS" and task.succeeded and task.done
    assert task.consumed_credits == 400
    assert task.created_at == datetime(2026, 4, 8, 10, 30, tzinfo=UTC)
    assert task.type == "text-to-video"
    assert task.request["duration"] == 5
    assert task.video_url == "http://cdn.test/videos/abc.mp4"
    assert task.progress == 100 and task.seed == 42
    assert task.raw["response"]["resultUrls"] == ["http://cdn.test/videos/abc.mp4"]


def test_task_from_sparse_data_is_lenient() -> None:
    task = Task.from_data({"task_id": "n92x", "status": "IN_PROGRESS", "created_at": "not a date", "progress": None})
    assert task.created_at is None and task.progress is None and task.consumed_credits is None
    assert not task.done and task.request == {}


def test_credits() -> None:
    rec = Recorder(envelope({"balance": 1234}))
    client, _ = client_for(rec)
    assert client.credits() == 1234
    assert rec.requests[0].url.path == "/api/credits"


# -- typed errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_DURATION", InvalidRequest),
        (400, "INVALID_PROMPT", InvalidRequest),
        (401, "INVALID_API_KEY", InvalidApiKey),
        (402, "INSUFFICIENT_CREDITS", InsufficientCredits),
        (404, "TASK_NOT_FOUND", TaskNotFound),
    ],
)
def test_client_errors_raise_at_once_with_the_right_class(status: int, code: str, cls: type[APIError]) -> None:
    for call in ("generate", "status"):
        rec = Recorder(error(status, code, "duration must be an integer from 3 to 15"))
        client, sleeps = client_for(rec, max_retries=5)
        with pytest.raises(cls) as info:
            client.generate("x") if call == "generate" else client.status("n92x")
        assert info.value.status == status and info.value.error_code == code
        assert info.value.message == "duration must be an integer from 3 to 15"
        assert code in str(info.value)
        assert len(rec.requests) == 1 and sleeps == []


def test_non_json_error_page_still_maps_by_status() -> None:
    rec = Recorder(*[httpx.Response(502, text="<html>bad gateway</html>")] * 3)
    client, sleeps = client_for(rec)
    with pytest.raises(ServerError) as info:
        client.status("n92x")
    assert info.value.error_code is None and "502" in info.value.message
    assert len(rec.requests) == 3 and len(sleeps) == 2


def test_error_reported_inside_a_200_envelope_is_raised() -> None:
    rec = Recorder(httpx.Response(200, json={"code": 402, "message": "no credits", "data": None}))
    client, _ = client_for(rec)
    with pytest.raises(InsufficientCredits, match="no credits"):
        client.credits()


# -- retries ------------------------------------------------------------------------------------


def test_status_429_with_retry_after_then_success() -> None:
    rec = Recorder(error(429, "RATE_LIMITED", headers={"Retry-After": "3"}), envelope(DONE))
    client, sleeps = client_for(rec)
    assert client.status("n92abcdefghijkl").succeeded
    assert sleeps == [3.0] and len(rec.requests) == 2


def test_429_past_max_retries_raises_rate_limited_with_retry_after() -> None:
    rec = Recorder(*[error(429, "RATE_LIMITED", headers={"Retry-After": "1"})] * 3)
    client, sleeps = client_for(rec, max_retries=2)
    with pytest.raises(RateLimited) as info:
        client.status("n92x")
    assert info.value.retry_after == 1.0 and sleeps == [1.0, 1.0]


def test_status_500_then_success() -> None:
    rec = Recorder(error(500, "INTERNAL_ERROR"), envelope(DONE))
    client, sleeps = client_for(rec)
    assert client.status("n92abcdefghijkl").succeeded
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_status_network_errors_then_success() -> None:
    req = httpx.Request("GET", "http://api.test/api/status")
    rec = Recorder(httpx.ConnectError("refused", request=req), httpx.ReadTimeout("slow", request=req), envelope(DONE))
    client, sleeps = client_for(rec)
    assert client.status("n92abcdefghijkl").succeeded
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_network_errors_past_max_retries_raise_api_connection_error() -> None:
    req = httpx.Request("GET", "http://api.test/api/credits")
    rec = Recorder(*[httpx.ConnectError("refused", request=req)] * 2)
    client, _ = client_for(rec, max_retries=1)
    with pytest.raises(APIConnectionError, match="refused"):
        client.credits()
    assert len(rec.requests) == 2


def test_generate_is_retried_after_it_may_have_been_sent_with_the_same_key() -> None:
    """A read timeout or a 5xx may hide an accepted task: the retry carries the call's Idempotency-Key,
    so a server that honours it answers the same task instead of rendering twice."""
    req = httpx.Request("POST", "http://api.test/api/generate")
    rec = Recorder(httpx.ReadTimeout("slow", request=req), error(502, "INTERNAL_ERROR"), envelope(ACCEPTED))
    client, _ = client_for(rec)
    assert client.generate("x").task_id == "n92abcdefghijkl"
    keys = {request.headers["Idempotency-Key"] for request in rec.requests}
    assert len(rec.requests) == 3 and len(keys) == 1
    rec = Recorder(*[httpx.RemoteProtocolError("dropped", request=req)] * 3)
    client, _ = client_for(rec, max_retries=2)
    with pytest.raises(APIConnectionError):
        client.generate("x")
    assert len(rec.requests) == 3


def test_generate_is_retried_on_429_and_on_failure_to_connect() -> None:
    req = httpx.Request("POST", "http://api.test/api/generate")
    rec = Recorder(
        error(429, "RATE_LIMITED", headers={"Retry-After": "2"}),
        httpx.ConnectError("refused", request=req),
        envelope(ACCEPTED),
    )
    client, sleeps = client_for(rec)
    assert client.generate("x").task_id == "n92abcdefghijkl"
    assert len(rec.requests) == 3 and sleeps[0] == 2.0


def test_max_retries_zero_disables_retries() -> None:
    rec = Recorder(error(503, "INTERNAL_ERROR"))
    client, _ = client_for(rec, max_retries=0)
    with pytest.raises(ServerError):
        client.status("n92x")


def test_generate_and_wait_failed_raises_task_failed() -> None:
    failed = {"task_id": "n92abcdefghijkl", "status": "FAILED", "consumed_credits": 0, "error_message": "bad image"}
    rec = Recorder(envelope(ACCEPTED), envelope(failed))
    client, sleeps = client_for(rec)
    with pytest.raises(TaskFailed) as info:
        client.generate_and_wait("x", first_delay=0.5)
    assert info.value.task.error_message == "bad image" and info.value.task.consumed_credits == 0
    assert sleeps == [0.5]


# -- download -----------------------------------------------------------------------------------


def test_download_streams_to_the_path_without_the_api_key(tmp_path: Path) -> None:
    rec = Recorder(error(503, "INTERNAL_ERROR"), httpx.Response(200, content=b"\x00\x00\x00 ftypisom video"))
    client, _ = client_for(rec)
    task = Task.from_data(DONE)
    path = client.download(task, tmp_path / "out" / "horse.mp4")
    assert path == tmp_path / "out" / "horse.mp4"
    assert path.read_bytes() == b"\x00\x00\x00 ftypisom video"
    assert not (tmp_path / "out" / "horse.mp4.part").exists()
    assert all("Authorization" not in r.headers for r in rec.requests)
    assert rec.requests[-1].url == "http://cdn.test/videos/abc.mp4"


def test_download_into_a_directory_names_the_file_after_the_task(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(200, content=b"mp4"), httpx.Response(200, content=b"mp4"))
    client, _ = client_for(rec)
    assert client.download(Task.from_data(DONE), tmp_path) == tmp_path / "n92abcdefghijkl.mp4"
    assert client.download("http://cdn.test/files/x.mp4?sig=1", tmp_path) == tmp_path / "x.mp4"


def test_download_of_an_unfinished_task_or_a_missing_file_is_an_error(tmp_path: Path) -> None:
    client, _ = client_for(Recorder(httpx.Response(404, text="gone")))
    with pytest.raises(HappyHorseError, match="has no video"):
        client.download(Task.from_data(ACCEPTED), tmp_path / "a.mp4")
    with pytest.raises(APIError) as info:
        client.download("http://cdn.test/gone.mp4", tmp_path / "a.mp4")
    assert info.value.status == 404 and not (tmp_path / "a.mp4").exists()


# -- the async twin -----------------------------------------------------------------------------


def async_client_for(recorder: Recorder, **kwargs: Any) -> tuple[AsyncClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = AsyncClient(
        "hh_test_key", "http://api.test", transport=httpx.MockTransport(recorder), sleep=sleep, **kwargs
    )
    return client, sleeps


async def test_async_generate_and_wait_and_download(tmp_path: Path) -> None:
    rec = Recorder(
        envelope(ACCEPTED), envelope(ACCEPTED | {"progress": 50}), envelope(DONE), httpx.Response(200, content=b"video")
    )
    client, sleeps = async_client_for(rec)
    async with client:
        task = await client.generate_and_wait("a horse", multi_prompt=[Shot("one", 3)], first_delay=1, interval=2)
        path = await client.download(task, tmp_path / "v.mp4")
    assert rec.bodies()[0]["multi_shots"] is True
    assert sleeps == [1, 2]
    assert path.read_bytes() == b"video"


async def test_async_errors_and_retries() -> None:
    req = httpx.Request("GET", "http://api.test/api/status")
    rec = Recorder(
        error(429, "RATE_LIMITED", headers={"Retry-After": "4"}),
        error(500, "INTERNAL_ERROR"),
        httpx.ConnectError("refused", request=req),
        envelope(DONE),
    )
    client, sleeps = async_client_for(rec, max_retries=3)
    assert (await client.status("n92abcdefghijkl")).succeeded
    assert sleeps[0] == 4.0 and len(sleeps) == 3
    client, sleeps = async_client_for(Recorder(error(401, "INVALID_API_KEY")))
    with pytest.raises(InvalidApiKey):
        await client.credits()
    assert sleeps == []
    rec = Recorder(*[error(500, "INTERNAL_ERROR")] * 2)
    client, _ = async_client_for(rec, max_retries=1)
    with pytest.raises(ServerError):
        await client.generate("x")
    assert len({request.headers["Idempotency-Key"] for request in rec.requests}) == 1 < len(rec.requests)


# -- the CLI, offline (the e2e tests run it against the real server) -----------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run the client commands in-process with a scripted transport: ``cli(rec, *args)``."""
    import typer
    from typer.testing import CliRunner

    from happyhorse.client import cli as cli_module

    app = typer.Typer()
    cli_module.register(app)

    @app.command("credits")
    def credits_command() -> None:
        cli_module.show_credits()

    monkeypatch.setenv("HAPPYHORSE_API_KEY", "hh_test_key")
    monkeypatch.setenv("HAPPYHORSE_BASE_URL", "http://api.test")
    for name in ("FIRST_DELAY", "INTERVAL", "MAX_INTERVAL"):
        monkeypatch.setenv(f"HAPPYHORSE_POLL_{name}", "0")

    def run(recorder: Recorder, *args: str) -> Any:
        def make(key: str, base_url: str | None) -> Client:
            return Client(key, base_url, transport=httpx.MockTransport(recorder), sleep=lambda _: None)

        monkeypatch.setattr(cli_module, "Client", make)
        return CliRunner().invoke(app, list(args))

    yield run


def test_cli_parses_shots_on_the_last_colon_and_elements() -> None:
    from happyhorse.client.cli import parse_element, parse_shot

    assert parse_shot("Title: a horse runs:4") == Shot("Title: a horse runs", 4)
    assert parse_element("dog=http://a/1.png, http://a/2.png") == Element("dog", ["http://a/1.png", "http://a/2.png"])
    import typer

    for bad in ("no seconds", "x:four", "x:"):
        with pytest.raises(typer.BadParameter):
            parse_shot(bad)
    with pytest.raises(typer.BadParameter):
        parse_element("dog")


def test_cli_generate_prints_the_task_id_and_sends_the_flags(cli: Any) -> None:
    rec = Recorder(envelope(ACCEPTED))
    result = cli(
        rec,
        "generate",
        "a horse",
        "--mode",
        "pro",
        "--duration",
        "7",
        "--aspect",
        "1:1",
        "--image",
        "http://i/1.png",
        "--no-sound",
        "--cfg",
        "0.8",
        "--seed",
        "3",
        "--element",
        "dog=http://i/a.png,http://i/b.png",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "n92abcdefghijkl"
    assert rec.bodies()[0] == {
        "model": "happyhorse-1.0/video",
        "prompt": "a horse",
        "mode": "pro",
        "duration": 7,
        "aspect_ratio": "1:1",
        "image_urls": ["http://i/1.png"],
        "sound": False,
        "cfg_scale": 0.8,
        "seed": 3,
        "happyhorse_elements": [{"name": "dog", "element_input_urls": ["http://i/a.png", "http://i/b.png"]}],
    }


def test_cli_generate_wait_downloads_and_prints_the_path(cli: Any, tmp_path: Path) -> None:
    rec = Recorder(
        envelope(ACCEPTED), envelope(ACCEPTED | {"progress": 30}), envelope(DONE), httpx.Response(200, content=b"video")
    )
    out = tmp_path / "v.mp4"
    result = cli(rec, "generate", "--shot", "a: b:3", "--shot", "c:2", "--wait", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("v.mp4") and out.read_bytes() == b"video"
    body = rec.bodies()[0]
    assert body["multi_shots"] is True and body["sound"] is True
    assert body["multi_prompt"] == [{"prompt": "a: b", "duration": 3}, {"prompt": "c", "duration": 2}]


@pytest.mark.parametrize(
    ("response", "code", "needle"),
    [
        (error(400, "INVALID_DURATION", "duration must be an integer from 3 to 15"), 2, "INVALID_DURATION"),
        (error(401, "INVALID_API_KEY", "invalid API key"), 3, "INVALID_API_KEY"),
        (error(402, "INSUFFICIENT_CREDITS", "not enough credits"), 3, "INSUFFICIENT_CREDITS"),
    ],
)
def test_cli_errors_are_one_line_and_an_exit_code(cli: Any, response: httpx.Response, code: int, needle: str) -> None:
    result = cli(Recorder(response), "generate", "x", "--duration", "99")
    assert result.exit_code == code
    assert needle in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_failed_task_exits_1_and_timeout_exits_4(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = {"task_id": "n92abcdefghijkl", "status": "FAILED", "error_message": "image is not an image"}
    result = cli(Recorder(envelope(ACCEPTED), envelope(failed)), "generate", "x", "--wait")
    assert result.exit_code == 1 and "image is not an image" in result.stderr
    monkeypatch.setenv("HAPPYHORSE_POLL_TIMEOUT", "0")
    result = cli(Recorder(envelope(ACCEPTED)), "generate", "x", "--wait")
    assert result.exit_code == 4 and "happyhorse status n92abcdefghijkl" in result.stderr


def test_cli_usage_errors_exit_2(cli: Any) -> None:
    assert cli(Recorder(), "generate").exit_code == 2
    assert cli(Recorder(), "generate", "x", "--shot", "no-seconds").exit_code == 2
    assert cli(Recorder(), "generate", "x", "--aspect", "4:3").exit_code == 2
    assert cli(Recorder(error(404, "TASK_NOT_FOUND", "task not found")), "status", "n92nope").exit_code == 2


def test_cli_missing_key_exits_3(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAPPYHORSE_API_KEY")
    result = cli(Recorder(), "credits")
    assert result.exit_code == 3 and "HAPPYHORSE_API_KEY" in result.stderr


def test_cli_status_and_credits(cli: Any) -> None:
    result = cli(Recorder(envelope(DONE)), "status", "n92abcdefghijkl", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "SUCCESS"
    result = cli(Recorder(envelope(DONE | {"progress": 100})), "status", "n92abcdefghijkl")
    assert "SUCCESS" in result.stdout and "http://cdn.test/videos/abc.mp4" in result.stdout
    result = cli(Recorder(envelope({"balance": 987})), "credits")
    assert result.exit_code == 0 and result.stdout.strip() == "987"
