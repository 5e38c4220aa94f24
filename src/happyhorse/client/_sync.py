# Generated from _async.py by scripts/unasync_client.py: edit that file, then run `make sync-client`.
"""The synchronous client, generated from the asynchronous one (``_async.py``)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from happyhorse.client._base import (
    DEFAULT_TIMEOUT,
    STREAM_READ_TIMEOUT,
    USER_AGENT,
    BaseClient,
    GenerateParams,
    SSEParser,
    build_generate_body,
    download_target,
    error_from_response,
    first_poll_delay,
    is_event_stream,
    local_inputs,
    parse_balance,
    parse_envelope,
    parse_task_page,
    partial_path,
    stream_failure,
    task_list_params,
    upload_files,
    upload_url,
    video_url_of,
    with_uploads,
)
from happyhorse.client.errors import APIConnectionError, RateLimited, ServerError, StreamUnavailable, WaitTimeout
from happyhorse.client.polling import (
    DEFAULT_MAX_RETRIES,
    TRANSIENT_ERRORS,
    RetryState,
    WaitLoop,
    finish_wait,
)
from happyhorse.client.types import Task

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs is 3.12; the annotation is never evaluated

__all__ = ["Client"]


class Client(BaseClient):
    """A HappyHorse 1.0 API client; :class:`AsyncClient` has the same methods, awaited.

    >>> with Client() as client:
    ...     task = client.generate_and_wait("A horse galloping on a beach", duration=5)
    ...     client.download(task, "horse.mp4")

    Args:
        api_key: the API key; defaults to ``$HAPPYHORSE_API_KEY``.
        base_url: the server; defaults to ``$HAPPYHORSE_BASE_URL``, then ``https://happyhorse.app``.
        timeout: the HTTP timeout of one request (seconds or an ``httpx.Timeout``).
        max_retries: how many times one request is retried after a 429, a 5xx or a network
            error (``generate`` only on 429 and failures to connect: it costs credits).
        http_client: an ``httpx.Client`` to use instead of a new one (not closed by ``close``).
        transport: an ``httpx`` transport for the new client, e.g. ``httpx.MockTransport`` in tests.
        sleep: replaces ``time.sleep`` for every delay (tests pass a recorder).
        clock: replaces ``time.monotonic`` for deadlines (tests pass a fake clock).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._configure(api_key, base_url, max_retries)
        self._owns_http = http_client is None
        # follow_redirects: result URLs may redirect to object storage.
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
        self._sleep = sleep or time.sleep
        self._now = clock or time.monotonic

    # -- the API -------------------------------------------------------------------------------

    def generate(self, prompt: str | None = None, **params: Unpack[GenerateParams]) -> Task:
        """Create a video task; returns at once with the task ``IN_PROGRESS``.

        The keyword arguments are the request's fields, as :class:`GenerateParams` defines them
        (the SDK's one list of them). Those left out (or ``None``) are not sent, so the server's
        defaults apply (std, 5 s, 16:9, with sound).
        ``multi_prompt`` (a list of :class:`Shot` or ``{"prompt", "duration"}`` dicts) makes a
        multi-shot task; ``prompt`` is then shared context for every shot and may be omitted.
        ``elements`` are :class:`Element` or dicts, referred to in prompts as ``@name``.

        Retried like any request (429, 5xx, network errors) with one ``Idempotency-Key`` for the
        call and all of its retries: a server that honours the header (this one) answers a retry of
        a request it already accepted with the same task, never a second render or debit.

        Raises:
            InvalidRequest: a field breaks the contract (``error_code`` names the rule).
            InvalidApiKey, InsufficientCredits, RateLimited, ServerError, APIConnectionError.
        """
        body = build_generate_body(prompt, self._upload_local(params))
        retry = self._retry_state()
        # One key for this call and all of its retries: the server never makes a second task for it,
        # so a POST that may have reached it (a read timeout, a dropped connection, a 5xx) is safe to send again.
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        data = self._request("POST", "/api/generate", json=body, retry=retry, headers=headers)
        return Task.from_data(data, sent=body)

    def status(self, task_id: str) -> Task:
        """Fetch a task's current state.

        Raises:
            TaskNotFound: no such task for this key.
        """
        return self._status(task_id, self._retry_state())

    def poll(
        self,
        task_id: str,
        *,
        first_delay: float = 8,
        interval: float = 10,
        max_interval: float = 20,
        timeout: float | None = 900,
    ) -> Iterator[Task]:
        """Yield every status check of a task, per the polling best practices, until it is done.

        The first check comes after ``first_delay`` seconds, the next after ``interval``, each
        later one 2 s later than the previous, up to ``max_interval``. The last task yielded is
        SUCCESS or FAILED (this does not raise on FAILED; :meth:`wait` does).

        Raises:
            WaitTimeout: ``timeout`` seconds passed first (``None``: wait forever).
        """
        loop = WaitLoop(
            task_id,
            first_delay=first_delay,
            interval=interval,
            max_interval=max_interval,
            timeout=timeout,
            clock=self._now,
            max_retries=self.max_retries,
        )
        while True:
            self._sleep(loop.next_sleep())
            retry = loop.retry_state()
            try:
                task = self._status(task_id, retry)
            except TRANSIENT_ERRORS as exc:
                if loop.timed_out():
                    raise loop.timeout_error() from exc
                raise
            loop.observe(task, retry)
            yield task
            if task.done:
                return

    def wait(
        self,
        task_id: str,
        *,
        first_delay: float = 8,
        interval: float = 10,
        max_interval: float = 20,
        timeout: float | None = 900,
    ) -> Task:
        """Poll a task until it is done (see :meth:`poll` for the schedule); return it on SUCCESS.

        Raises:
            TaskFailed: the task ended FAILED (``.task.error_message`` says why).
            WaitTimeout: still in progress after ``timeout`` seconds; check again later.
            TaskNotFound, InvalidApiKey: at once, without retrying.
        """
        final: Task | None = None
        for task in self.follow(
            task_id, first_delay=first_delay, interval=interval, max_interval=max_interval, timeout=timeout
        ):
            final = task
        assert final is not None  # follow yields at least once or raises
        return finish_wait(final)

    def follow(
        self,
        task_id: str,
        *,
        first_delay: float = 8,
        interval: float = 10,
        max_interval: float = 20,
        timeout: float | None = 900,
    ) -> Iterator[Task]:
        """Yield each state of a task until the terminal one: pushed by the server's status stream when
        it offers one (this server says so in a header), else polled as :meth:`poll` does.

        Raises:
            WaitTimeout: ``timeout`` seconds passed first (``None``: wait forever).
        """
        deadline = None if timeout is None else self._now() + timeout
        last: Task | None = None
        if self._stream_path is not None:
            try:
                for task in self._stream(task_id, deadline, timeout):
                    last = task
                    yield task
                if last is not None and last.done:
                    return
            except (StreamUnavailable, RateLimited, ServerError, httpx.TransportError, ValueError):
                pass  # the stream is gone, busy or not offered: the public docs' polling takes over
        remaining = None if deadline is None else max(0.0, deadline - self._now())
        for task in self.poll(
            task_id,
            first_delay=first_poll_delay(first_delay, last),
            interval=interval,
            max_interval=max_interval,
            timeout=remaining,
        ):
            yield task

    def stream(self, task_id: str, *, timeout: float | None = None) -> Iterator[Task]:
        """Yield the task as the server's status stream pushes it (``GET /api/status/stream``, this
        server's extension), ending with the terminal snapshot.

        Raises:
            StreamUnavailable: the server has no status stream (the hosted API): use :meth:`wait`.
            WaitTimeout: ``timeout`` seconds passed before the task ended.
        """
        deadline = None if timeout is None else self._now() + timeout
        yield from self._stream(task_id, deadline, timeout)

    def _stream(self, task_id: str, deadline: float | None, timeout: float | None) -> Iterator[Task]:
        path = self._stream_path or "/api/status/stream"
        headers = {**self._auth_headers(), "Accept": "text/event-stream"}
        read_timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        parser = SSEParser()
        last: Task | None = None
        with self._http.stream(
            "GET", self._url(path), params={"task_id": task_id}, headers=headers, timeout=read_timeout
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise stream_failure(response)
            if not is_event_stream(response):
                raise StreamUnavailable(f"{response.request.url} is not an event stream")
            for line in response.iter_lines():
                data = parser.feed(line)
                if data is not None:
                    last = Task.from_data(data)
                    yield last
                    if last.done:
                        return
                if deadline is not None and self._now() > deadline:
                    raise WaitTimeout(task_id, timeout or 0.0, last)
        raise StreamUnavailable("the status stream closed before the task ended")

    def generate_and_wait(
        self,
        prompt: str | None = None,
        *,
        first_delay: float = 8,
        interval: float = 10,
        max_interval: float = 20,
        timeout: float | None = 900,
        **params: Unpack[GenerateParams],
    ) -> Task:
        """:meth:`generate`, then :meth:`wait`; returns the SUCCESS task (``task.video_url``).

        On :class:`WaitTimeout` the task keeps rendering: ``exc.task_id`` lets you check later.
        """
        task = self.generate(prompt, **params)
        return self.wait(
            task.task_id,
            first_delay=first_delay,
            interval=interval,
            max_interval=max_interval,
            timeout=timeout,
        )

    def download(self, task_or_url: Task | str, path: str | os.PathLike[str]) -> Path:
        """Save a task's video (or any result URL) to ``path``; returns the file's path.

        If ``path`` is a directory the file is ``<task_id>.mp4`` inside it. The file appears only
        once complete (it streams into ``<path>.part`` first). The API key is not sent: result
        URLs need none, and they may point at another host.
        """
        url, task_id = video_url_of(task_or_url)
        url = urljoin(self.base_url + "/", url)
        target = download_target(path, url, task_id)
        part = partial_path(target)
        retry = self._retry_state()
        while True:
            try:
                with self._http.stream("GET", url, headers={"User-Agent": USER_AGENT}) as response:
                    delay = retry.after_response(response)
                    if delay is None:
                        if response.status_code >= 400:
                            response.read()
                            raise error_from_response(response)
                        with part.open("wb") as out:
                            for chunk in response.iter_bytes():
                                out.write(chunk)
                        part.replace(target)
                        return target
            except httpx.TransportError as exc:
                part.unlink(missing_ok=True)
                delay = retry.after_network_error(exc)
                if delay is None:
                    reason = exc or type(exc).__name__
                    raise APIConnectionError(f"download of {url} failed: {reason}") from exc
            self._sleep(delay)

    def upload(self, path: str | os.PathLike[str]) -> str:
        """Upload a local image (``POST /api/upload``); returns its URL on the server for ``image_urls``.

        ``generate`` does this by itself for every image or element URL that is a file on disk.

        Raises:
            InvalidRequest: not an image the server accepts (format, size, pixels).
            HappyHorseError: the file cannot be read.
        """
        data = self._request("POST", "/api/upload", files=upload_files(path), retry=self._retry_state())
        return upload_url(data)

    def _upload_local(self, params: GenerateParams) -> GenerateParams:
        local = local_inputs(params.get("image_urls"), params.get("elements"))
        uploaded = {path: self.upload(path) for path in local}
        return with_uploads(params, uploaded)

    def credits(self) -> int:
        """The API key's account balance, in credits."""
        data = self._request("GET", "/api/credits", retry=self._retry_state())
        return parse_balance(data)

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> Iterator[Task]:
        """Every task of the key's account, newest first, following the server's cursors (extension).

        ``status`` keeps only ``"IN_PROGRESS"``, ``"SUCCESS"`` or ``"FAILED"`` tasks; ``limit`` is the
        page size (1-100, the server's default 20). Pages are fetched as you iterate.
        """
        cursor: str | None = None
        while True:
            params = task_list_params(status, limit, cursor)
            data = self._request("GET", "/api/tasks", params=params, retry=self._retry_state())
            tasks, cursor = parse_task_page(data)
            yield from tasks
            if cursor is None:
                return

    def delete_result(self, task_id: str) -> Task:
        """Delete a finished task's video now (extension); returns the task, ``expired`` and no video.

        Raises:
            TaskNotFound: no such task for this key. APIError (409 ``TASK_NOT_FINISHED``): still rendering.
        """
        data = self._request("DELETE", f"/api/tasks/{task_id}", retry=self._retry_state())
        return Task.from_data(data)

    def cancel(self, task_id: str) -> Task:
        """Cancel a task in progress (this server's extension): it ends ``FAILED`` with ``cancelled``
        set and its credits refunded; returns it as it is now.

        Raises:
            TaskNotFound: no such task for this key. Conflict (409 ``TASK_NOT_CANCELLABLE``): it had ended.
        """
        data = self._request("POST", "/api/cancel", json={"task_id": task_id}, retry=self._retry_state())
        return Task.from_data(data)

    # -- plumbing ------------------------------------------------------------------------------

    def _status(self, task_id: str, retry: RetryState) -> Task:
        data = self._request("GET", "/api/status", params={"task_id": task_id}, retry=retry)
        return Task.from_data(data)

    def _request(
        self,
        method: str,
        path: str,
        *,
        retry: RetryState,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        while True:
            try:
                response = self._http.request(
                    method,
                    self._url(path),
                    params=params,
                    json=json,
                    files=files,
                    headers={**self._auth_headers(), **(headers or {})},
                )
            except httpx.TransportError as exc:
                delay = retry.after_network_error(exc)
                if delay is None:
                    raise APIConnectionError(f"could not reach {self.base_url}: {exc or type(exc).__name__}") from exc
            else:
                self._note_features(response)
                delay = retry.after_response(response)
                if delay is None:
                    return parse_envelope(response)
            self._sleep(delay)

    def close(self) -> None:
        """Close the HTTP connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
