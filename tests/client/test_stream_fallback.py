"""The SDK follows a task on the server's status stream when the server advertises one, and polls
(the public docs' cadence) when it does not, or when the stream turns out missing."""

from __future__ import annotations

import json

import httpx
import pytest

import happyhorse

ADVERT = {"X-HappyHorse-Stream": "/api/status/stream"}


def envelope(data: dict) -> dict:
    return {"code": 200, "message": "success", "data": data}


def running(progress: int, **extra: object) -> dict:
    return {"task_id": "n92abc", "status": "IN_PROGRESS", "progress": progress, **extra}


DONE = {"task_id": "n92abc", "status": "SUCCESS", "progress": 100, "response": {"resultUrls": ["http://x/v.mp4"]}}


def sse(*events: dict) -> bytes:
    return b"".join(b"event: status\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events) + b": bye\n\n"


class Recorder:
    def __init__(self, stream_answer: httpx.Response | None, advertise: bool = True) -> None:
        self.paths: list[str] = []
        self.sleeps: list[float] = []
        self.stream_answer = stream_answer
        self.advertise = advertise
        self.polls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        headers = ADVERT if self.advertise else {}
        if request.url.path == "/api/generate":
            return httpx.Response(200, json=envelope({"task_id": "n92abc", "status": "IN_PROGRESS"}), headers=headers)
        if request.url.path == "/api/status/stream":
            assert self.stream_answer is not None
            return self.stream_answer
        self.polls += 1
        return httpx.Response(
            200, json=envelope(running(50, eta_seconds=3) if self.polls < 2 else DONE), headers=headers
        )

    def client(self) -> happyhorse.Client:
        return happyhorse.Client(
            "k",
            "http://api.test",
            transport=httpx.MockTransport(self.handler),
            sleep=self.sleeps.append,
            clock=lambda: 0.0,
        )


def test_an_advertised_stream_is_followed_without_polling() -> None:
    stream = httpx.Response(
        200, content=sse(running(10), running(60), DONE), headers={"content-type": "text/event-stream"}
    )
    recorder = Recorder(stream)
    with recorder.client() as client:
        seen = list(client.follow(client.generate("a horse").task_id))
    assert [t.progress for t in seen] == [10, 60, 100] and seen[-1].succeeded
    assert recorder.paths == ["/api/generate", "/api/status/stream"] and recorder.sleeps == []


def test_no_advert_means_the_public_polling_cadence() -> None:
    recorder = Recorder(None, advertise=False)
    with recorder.client() as client:
        task = client.generate_and_wait("a horse")
    assert task.succeeded and "/api/status/stream" not in recorder.paths
    assert recorder.sleeps == [8, 10]  # first_delay, then interval: the docs' schedule


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"code": 404, "message": "no such endpoint", "error_code": "NOT_FOUND", "data": None}),
        httpx.Response(200, json=envelope(running(5))),  # not an event stream
    ],
)
def test_a_missing_stream_falls_back_to_polling(answer: httpx.Response) -> None:
    recorder = Recorder(answer)
    with recorder.client() as client:
        task = client.generate_and_wait("a horse")
    assert task.succeeded and recorder.paths.count("/api/status") == 2


def test_an_unknown_task_on_the_stream_raises() -> None:
    missing = httpx.Response(
        404, json={"code": 404, "message": "no task", "error_code": "TASK_NOT_FOUND", "data": None}
    )
    recorder = Recorder(missing)
    with recorder.client() as client:
        client.generate("a horse")
        with pytest.raises(happyhorse.TaskNotFound):
            client.wait("n92abc")


def test_a_stream_that_breaks_polls_from_its_eta() -> None:
    broken = httpx.Response(
        200,
        content=sse(running(20, eta_seconds=4))[: -len(b": bye\n\n")],
        headers={"content-type": "text/event-stream"},
    )
    recorder = Recorder(broken)
    with recorder.client() as client:
        task = client.generate_and_wait("a horse")
    assert task.succeeded
    assert recorder.sleeps[0] == 4  # the first poll waits for the server's estimate, not 8 s
