"""The polling schedule and the retry policy, on their own and through the clients' wait().

A fake clock and a recording sleep make every delay exact and the tests instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from happyhorse import AsyncClient, Client, RateLimited, TaskFailed, TaskNotFound, WaitTimeout
from happyhorse.client.polling import PollSchedule, RetryState, parse_retry_after


class FakeTime:
    """A clock that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def envelope(data: dict[str, Any] | None, status: int = 200, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"code": status, "message": "success" if status == 200 else "error", "data": data}
    body.update(extra)
    return httpx.Response(status, json=body)


def task_data(status: str = "IN_PROGRESS", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"task_id": "n92abcdefghijkl", "status": status, "consumed_credits": 300}
    if status == "SUCCESS":
        data["response"] = {"resultUrls": ["http://cdn.test/v.mp4"]}
    if status == "FAILED":
        data["error_message"] = "image could not be fetched"
        data["consumed_credits"] = 0
    data.update(fields)
    return data


def scripted(responses: list[httpx.Response | Exception]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering with ``responses`` in order; the list of requests it saw."""
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = next(queue)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def make_client(responses: list[httpx.Response | Exception], **kwargs: Any) -> tuple[Client, FakeTime, list]:
    transport, seen = scripted(responses)
    fake = FakeTime()
    client = Client("key", "http://api.test", transport=transport, sleep=fake.sleep, clock=fake.clock, **kwargs)
    return client, fake, seen


# -- the schedule on its own --------------------------------------------------------------------


def test_schedule_starts_with_first_delay_then_grows_by_two_up_to_max() -> None:
    schedule = PollSchedule(8, 10, 20)
    assert [schedule.next_delay() for _ in range(9)] == [8, 10, 12, 14, 16, 18, 20, 20, 20]


def test_schedule_interval_above_max_is_capped() -> None:
    schedule = PollSchedule(1, 30, 20)
    assert [schedule.next_delay() for _ in range(3)] == [1, 20, 20]


def test_schedule_slow_down_jumps_to_max_interval() -> None:
    schedule = PollSchedule(8, 10, 20)
    assert schedule.next_delay() == 8
    schedule.slow_down()
    assert [schedule.next_delay() for _ in range(2)] == [20, 20]


def test_schedule_rejects_negative_delays() -> None:
    with pytest.raises(ValueError, match="interval"):
        PollSchedule(8, -1, 20)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# -- the retry policy on its own ----------------------------------------------------------------


def _resp(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_retry_honours_retry_after_exactly_and_marks_rate_limited() -> None:
    retry = RetryState(max_retries=2)
    assert retry.after_response(_resp(429, {"Retry-After": "7"})) == 7.0
    assert retry.rate_limited


def test_retry_backoff_is_jittered_exponential_and_bounded_by_max_retries() -> None:
    retry = RetryState(max_retries=3, jitter=lambda: 1.0)
    assert [retry.after_response(_resp(503)) for _ in range(4)] == [0.5, 1.0, 2.0, None]
    halved = RetryState(max_retries=1, jitter=lambda: 0.5)
    assert halved.after_response(_resp(500)) == 0.25


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409])
def test_client_errors_are_never_retried(status: int) -> None:
    assert RetryState(max_retries=5).after_response(_resp(status)) is None


def test_non_idempotent_request_retries_only_what_surely_was_not_sent() -> None:
    req = httpx.Request("POST", "http://api.test/api/generate")
    retry = RetryState(max_retries=5, idempotent=False, jitter=lambda: 1.0)
    assert retry.after_response(_resp(500)) is None
    assert retry.after_network_error(httpx.ReadTimeout("slow", request=req)) is None
    assert retry.after_network_error(httpx.RemoteProtocolError("dropped", request=req)) is None
    assert retry.after_network_error(httpx.ConnectError("refused", request=req)) == 0.5
    assert retry.after_network_error(httpx.ConnectTimeout("slow connect", request=req)) == 1.0
    assert retry.after_response(_resp(429, {"Retry-After": "2"})) == 2.0


def test_huge_retry_after_is_left_to_the_caller_outside_a_wait() -> None:
    assert RetryState().after_response(_resp(429, {"Retry-After": "3600"})) is None


def test_retry_delays_never_run_past_a_deadline() -> None:
    retry = RetryState(max_retries=2, deadline=10.0, clock=lambda: 7.0)
    assert retry.after_response(_resp(429, {"Retry-After": "3600"})) == 3.0
    late = RetryState(max_retries=2, deadline=10.0, clock=lambda: 10.0)
    assert late.after_response(_resp(503)) is None


# -- wait(): the schedule through the client ----------------------------------------------------


def test_wait_sleeps_8_10_12_up_to_20_then_20() -> None:
    responses: list = [envelope(task_data())] * 7 + [envelope(task_data("SUCCESS"))]
    client, fake, seen = make_client(responses)
    task = client.wait("n92abcdefghijkl")
    assert task.status == "SUCCESS"
    assert task.video_url == "http://cdn.test/v.mp4"
    assert fake.sleeps == [8, 10, 12, 14, 16, 18, 20, 20]
    assert len(seen) == 8
    assert all(r.url.params["task_id"] == "n92abcdefghijkl" for r in seen)


def test_wait_intervals_are_configurable() -> None:
    responses: list = [envelope(task_data())] * 3 + [envelope(task_data("SUCCESS"))]
    client, fake, _ = make_client(responses)
    client.wait("n92abcdefghijkl", first_delay=0.1, interval=0.2, max_interval=0.3, timeout=60)
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_wait_times_out_with_the_task_id_and_the_last_status() -> None:
    client, fake, seen = make_client([envelope(task_data(progress=40))] * 10)
    with pytest.raises(WaitTimeout) as info:
        client.wait("n92abcdefghijkl", timeout=30)
    # The last sleep is cut at the deadline so the final check happens right at it.
    assert fake.sleeps == [8, 10, 12]
    assert len(seen) == 3
    assert info.value.task_id == "n92abcdefghijkl"
    assert info.value.task is not None and info.value.task.progress == 40


def test_wait_raises_task_failed_carrying_the_task() -> None:
    client, _, _ = make_client([envelope(task_data()), envelope(task_data("FAILED"))])
    with pytest.raises(TaskFailed) as info:
        client.wait("n92abcdefghijkl")
    assert info.value.task.status == "FAILED"
    assert info.value.task.error_message == "image could not be fetched"
    assert "image could not be fetched" in str(info.value)


def test_wait_429_honours_retry_after_then_polls_at_the_slowest_rate() -> None:
    limited = envelope(None, 429, error_code="RATE_LIMITED")
    limited.headers["Retry-After"] = "3"
    responses: list = [limited, envelope(task_data()), envelope(task_data("SUCCESS"))]
    client, fake, seen = make_client(responses)
    client.wait("n92abcdefghijkl")
    assert fake.sleeps == [8, 3, 20]
    assert len(seen) == 3


def test_wait_500_and_network_error_back_off_then_continue() -> None:
    req = httpx.Request("GET", "http://api.test/api/status")
    responses: list = [
        envelope(None, 500, error_code="INTERNAL_ERROR"),
        httpx.ReadTimeout("slow", request=req),
        envelope(task_data("SUCCESS")),
    ]
    client, fake, seen = make_client(responses)
    assert client.wait("n92abcdefghijkl").status == "SUCCESS"
    assert fake.sleeps[0] == 8
    backoffs = fake.sleeps[1:]
    assert len(backoffs) == 2
    assert 0.25 <= backoffs[0] <= 0.5 and 0.5 <= backoffs[1] <= 1.0
    assert len(seen) == 3


def test_wait_gives_up_after_max_retries_of_one_check() -> None:
    responses: list = [envelope(None, 503, error_code="INTERNAL_ERROR")] * 3
    client, _, seen = make_client(responses, max_retries=2)
    with pytest.raises(Exception, match="HTTP 503"):
        client.wait("n92abcdefghijkl")
    assert len(seen) == 3


def test_wait_rate_limited_until_the_deadline_is_a_wait_timeout() -> None:
    limited = envelope(None, 429, error_code="RATE_LIMITED")
    limited.headers["Retry-After"] = "100"
    client, fake, seen = make_client([limited] * 10, max_retries=5)
    with pytest.raises(WaitTimeout) as info:
        client.wait("n92abcdefghijkl", timeout=30)
    assert isinstance(info.value.__cause__, RateLimited)
    # Retry-After is cut at the deadline, and nothing is retried once it has passed.
    assert fake.sleeps == [8, 22]
    assert len(seen) == 2


def test_wait_unknown_task_raises_at_once() -> None:
    client, fake, seen = make_client([envelope(None, 404, error_code="TASK_NOT_FOUND")])
    with pytest.raises(TaskNotFound):
        client.wait("n92nope")
    assert len(seen) == 1 and fake.sleeps == [8]


def test_poll_yields_every_check_so_callers_can_show_progress() -> None:
    responses: list = [envelope(task_data(progress=10)), envelope(task_data(progress=60))]
    responses.append(envelope(task_data("SUCCESS", progress=100)))
    client, _, _ = make_client(responses)
    seen = [(t.status, t.progress) for t in client.poll("n92abcdefghijkl", first_delay=0, interval=0)]
    assert seen == [("IN_PROGRESS", 10), ("IN_PROGRESS", 60), ("SUCCESS", 100)]


# -- the async twin -----------------------------------------------------------------------------


def make_async(responses: list[httpx.Response | Exception]) -> tuple[AsyncClient, FakeTime, list]:
    transport, seen = scripted(responses)
    fake = FakeTime()
    client = AsyncClient("key", "http://api.test", transport=transport, sleep=fake.async_sleep, clock=fake.clock)
    return client, fake, seen


async def test_async_wait_has_the_same_schedule() -> None:
    responses: list = [envelope(task_data())] * 7 + [envelope(task_data("SUCCESS"))]
    client, fake, _ = make_async(responses)
    async with client:
        task = await client.wait("n92abcdefghijkl")
    assert task.video_url == "http://cdn.test/v.mp4"
    assert fake.sleeps == [8, 10, 12, 14, 16, 18, 20, 20]


async def test_async_wait_timeout_and_failure() -> None:
    client, fake, _ = make_async([envelope(task_data())] * 5)
    with pytest.raises(WaitTimeout):
        await client.wait("n92abcdefghijkl", timeout=20)
    assert fake.sleeps == [8, 10, 2]
    client, _, _ = make_async([envelope(task_data("FAILED"))])
    with pytest.raises(TaskFailed):
        await client.wait("n92abcdefghijkl")


async def test_async_wait_429_then_success() -> None:
    limited = envelope(None, 429, error_code="RATE_LIMITED")
    limited.headers["Retry-After"] = "2"
    client, fake, _ = make_async([limited, envelope(task_data("SUCCESS"))])
    assert (await client.wait("n92abcdefghijkl")).status == "SUCCESS"
    assert fake.sleeps == [8, 2]
