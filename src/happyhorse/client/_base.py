"""What the sync and async clients share: configuration, request bodies, response parsing.

Nothing here does I/O, so :class:`~happyhorse.Client` and :class:`~happyhorse.AsyncClient`
differ only in ``await``.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit

import httpx

from happyhorse.client.errors import APIError, HappyHorseError, StreamUnavailable, api_error
from happyhorse.client.polling import RetryState, parse_retry_after
from happyhorse.client.types import AspectRatio, Element, Mode, Shot, Task

VERSION = "0.1.0"
MODEL = "happyhorse-1.0/video"
DEFAULT_BASE_URL = "https://happyhorse.app"
# Generous read timeout: a busy server may take a while to answer, but connecting should be quick.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = f"happyhorse-python/{VERSION}"

ShotLike = Shot | Mapping[str, Any]
ElementLike = Element | Mapping[str, Any]


class GenerateParams(TypedDict, total=False):
    """The keyword arguments of ``generate`` and ``generate_and_wait`` (sync and async): the one
    definition of the request's fields in the SDK. A field left out is not sent, so the server's
    default applies; ``sound`` is sent as True when left out (multi-shot requests must send it)."""

    mode: Mode | None
    duration: int | None
    aspect_ratio: AspectRatio | None
    image_urls: Sequence[str] | None
    sound: bool | None
    cfg_scale: float | None
    multi_prompt: Sequence[ShotLike] | None  # makes a multi-shot task
    elements: Sequence[ElementLike] | None
    seed: int | None
    negative_prompt: str | None


STREAM_HEADER = "x-happyhorse-stream"  # a server with a status stream names its path in this header
STREAM_READ_TIMEOUT = 45.0  # the server comments every 15 s: three missed ones mean the stream is gone


class BaseClient:
    """Configuration and the I/O-free halves of every call."""

    api_key: str
    base_url: str
    max_retries: int
    _now: Callable[[], float]  # the monotonic clock; injectable so tests need not wait
    _stream_path: str | None = None  # learnt from STREAM_HEADER on any answer of the server

    def _note_features(self, response: httpx.Response) -> None:
        path = response.headers.get(STREAM_HEADER)
        if path and path.startswith("/"):
            self._stream_path = path

    def _configure(self, api_key: str | None, base_url: str | None, max_retries: int) -> None:
        key = api_key if api_key is not None else os.environ.get("HAPPYHORSE_API_KEY")
        if not key:
            raise HappyHorseError("no API key: pass api_key=... or set HAPPYHORSE_API_KEY")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.api_key = key
        self.base_url = (base_url or os.environ.get("HAPPYHORSE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _auth_headers(self) -> dict[str, str]:
        # Per request, not on the httpx client: download() must not send the key to a CDN.
        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT}

    def _retry_state(self, *, idempotent: bool = True, deadline: float | None = None) -> RetryState:
        return RetryState(max_retries=self.max_retries, idempotent=idempotent, deadline=deadline, clock=self._now)


def build_generate_body(prompt: str | None, params: GenerateParams) -> dict[str, Any]:
    """The ``POST /api/generate`` body: only the fields given (None counts as not given), so the
    server's defaults apply.

    No validation here: the server is the one authority on the rules, and its errors name the
    field. ``sound`` is always sent because multi-shot requests must send it explicitly.
    """
    unknown = set(params) - set(GenerateParams.__annotations__)
    if unknown:  # the TypedDict checks this for type-checked callers; plain callers get the same word
        raise TypeError(f"generate() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    given: dict[str, Any] = {name: value for name, value in params.items() if value is not None}
    multi_prompt = given.pop("multi_prompt", None)
    elements = given.pop("elements", None)
    body: dict[str, Any] = {"model": MODEL}
    if prompt is not None:
        body["prompt"] = prompt
    if "image_urls" in given:
        given["image_urls"] = list(given["image_urls"])
    body.update(given)
    body["sound"] = given.get("sound", True)
    if multi_prompt is not None:
        body["multi_shots"] = True
        body["multi_prompt"] = [s.to_wire() if isinstance(s, Shot) else dict(s) for s in multi_prompt]
    if elements is not None:
        body["happyhorse_elements"] = [e.to_wire() if isinstance(e, Element) else dict(e) for e in elements]
    return body


def task_list_params(status: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The query of one ``GET /api/tasks`` page: only what was given, so the server's defaults apply."""
    given = {"status": status, "limit": limit, "cursor": cursor}
    return {name: value for name, value in given.items() if value is not None}


def parse_task_page(data: Mapping[str, Any]) -> tuple[list[Task], str | None]:
    """The tasks of one ``/api/tasks`` page and the cursor of the next (``None`` on the last)."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        raise APIError(200, None, f"unexpected /api/tasks answer: tasks is {tasks!r}")
    cursor = data.get("next_cursor")
    return [Task.from_data(item) for item in tasks], cursor if isinstance(cursor, str) and cursor else None


def first_poll_delay(first_delay: float, last: Task | None) -> float:
    """The first check of a polling wait: at the server's ``eta_seconds`` when a snapshot gave one."""
    eta = last.eta_seconds if last is not None else None
    return max(1.0, float(eta)) if eta is not None else first_delay


def stream_failure(response: httpx.Response) -> Exception:
    """What an error answer to a stream request means (its body read): the API's error, or
    StreamUnavailable when the server simply has no such endpoint."""
    error = error_from_response(response)
    if response.status_code in (404, 405, 406, 501) and error.error_code != "TASK_NOT_FOUND":
        return StreamUnavailable(f"{response.request.url}: HTTP {response.status_code}")
    return error


def is_event_stream(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("text/event-stream")


class SSEParser:
    """Server-Sent Events, line by line: ``feed(line)`` returns a finished ``status`` event's data, or
    ``None`` (a comment, a blank line between events, or a line of one still being read)."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        if line == "":
            event, data = self.event, self.data
            self.event, self.data = "message", []
            if event == "status" and data:
                parsed = json.loads("\n".join(data))
                return parsed if isinstance(parsed, dict) else None
            return None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


def parse_envelope(response: httpx.Response) -> dict[str, Any]:
    """Return the envelope's ``data``, or raise the :class:`APIError` the response stands for."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    envelope = body if isinstance(body, dict) else {}
    # Some deployments report errors in a 200 with the real status in `code`: honour both.
    code = envelope.get("code")
    status = response.status_code
    if status < 400 and isinstance(code, int) and not isinstance(code, bool) and code >= 400:
        status = code
    if status >= 400:
        raise error_from_response(response, envelope, status)
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise APIError(status, None, f"unexpected response from {response.request.url}: no data object")
    return data


def parse_balance(data: Mapping[str, Any]) -> int:
    """The ``balance`` of a ``/api/credits`` answer."""
    balance = data.get("balance")
    if isinstance(balance, bool) or not isinstance(balance, int | float):
        raise APIError(200, None, f"unexpected /api/credits answer: balance is {balance!r}")
    return int(balance)


def error_from_response(
    response: httpx.Response, envelope: Mapping[str, Any] | None = None, status: int | None = None
) -> APIError:
    """The exception for an error response, whether or not it carries the API's envelope."""
    if envelope is None:
        try:
            body = response.json()
        except ValueError:
            body = None
        envelope = body if isinstance(body, dict) else {}
    status = status or response.status_code
    message = envelope.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    error_code = envelope.get("error_code")
    return api_error(
        status,
        error_code if isinstance(error_code, str) else None,
        message,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def video_url_of(task_or_url: Task | str) -> tuple[str, str | None]:
    """The URL to download and the task id (if known) behind it."""
    if isinstance(task_or_url, Task):
        if not task_or_url.video_url:
            raise HappyHorseError(f"task {task_or_url.task_id} has no video (status {task_or_url.status})")
        return task_or_url.video_url, task_or_url.task_id
    return task_or_url, None


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str | None, suffix: str = ".mp4") -> str:
    """A file name made from what a server said (a task id, a URL's last segment), safe to create in the
    working directory: letters, digits, ``.``, ``_`` and ``-`` only, no leading dot (so never ``..`` or a
    hidden file), at most 120 characters, ``suffix`` added unless it is there; ``video.mp4`` if nothing is left.
    """
    stem = _UNSAFE_NAME_CHARS.sub("_", name or "").lstrip(".")[:120]
    if not stem.strip("_"):
        stem = "video"
    return stem if stem.endswith(suffix) else stem + suffix


def download_target(path: str | os.PathLike[str], url: str, task_id: str | None) -> Path:
    """Where a download lands: ``path`` itself, or ``<task_id>.mp4`` inside it if it is a directory.

    The name inside a directory comes from the server (the task id, else the URL), so it is sanitised:
    a hostile or broken server cannot make it ``../../.bashrc``.
    """
    target = Path(path)
    if target.is_dir():
        target = target / safe_file_name(task_id or Path(unquote(urlsplit(url).path)).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def partial_path(target: Path) -> Path:
    """The temporary file a download streams into; renamed over ``target`` once complete."""
    return target.with_name(target.name + ".part")


# -- local files as input images ------------------------------------------------------------------

PathLike = str | os.PathLike[str]


def is_local_path(value: Any) -> bool:
    """Whether an image "URL" is a file on this machine: not http(s), and an existing file."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or value.lower().startswith(("http://", "https://")):
        return False
    try:
        return Path(value).expanduser().is_file()
    except (OSError, ValueError):
        return False


def upload_files(path: PathLike) -> dict[str, tuple[str, bytes, str]]:
    """The multipart ``files`` of ``POST /api/upload`` for ``path`` (the server sniffs the type)."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise HappyHorseError(f"cannot read {file}: {exc.strerror or exc}") from exc
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return {"file": (file.name, data, media_type)}


def upload_url(data: Mapping[str, Any]) -> str:
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise APIError(200, None, f"unexpected /api/upload answer: url is {url!r}")
    return url


def element_urls(element: ElementLike) -> list[Any]:
    if isinstance(element, Element):
        return list(element.element_input_urls)
    for key in ("element_input_urls", "images"):
        if isinstance(element.get(key), list | tuple):
            return list(element[key])
    return []


def local_inputs(image_urls: Sequence[Any] | None, elements: Sequence[ElementLike] | None) -> list[Any]:
    """The local files among the image and element URLs, each once, in order."""
    found: list[Any] = []
    candidates = list(image_urls or []) + [url for e in elements or [] for url in element_urls(e)]
    for value in candidates:
        if is_local_path(value) and value not in found:
            found.append(value)
    return found


def with_uploads(params: GenerateParams, uploaded: Mapping[Any, str]) -> GenerateParams:
    """The parameters with each uploaded local file among the image and element URLs replaced by its URL."""

    def swap(urls: Sequence[Any]) -> list[str]:
        return [uploaded.get(url, url) if is_local_path(url) else url for url in urls]

    changed_params = GenerateParams(**params)
    image_urls = params.get("image_urls")
    if image_urls is not None:
        changed_params["image_urls"] = swap(image_urls)
    elements = params.get("elements")
    if elements is None:
        return changed_params
    new_elements: list[ElementLike] = []
    for element in elements:
        if isinstance(element, Element):
            new_elements.append(dataclasses.replace(element, element_input_urls=swap(element.element_input_urls)))
            continue
        changed = dict(element)
        for key in ("element_input_urls", "images"):
            if isinstance(changed.get(key), list | tuple):
                changed[key] = swap(changed[key])
        new_elements.append(changed)
    changed_params["elements"] = new_elements
    return changed_params
