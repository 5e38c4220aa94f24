"""The client half of the ``happyhorse`` command: ``generate``, ``status``, ``tasks`` and ``credits``.

The main CLI calls :func:`register` to add ``generate`` and ``status``, and :func:`show_credits`
from the ``credits`` group when no subcommand is given.

Configuration (flags win over the environment):

    HAPPYHORSE_API_KEY             the API key                           (--api-key)
    HAPPYHORSE_BASE_URL            the server, default https://happyhorse.app  (--base-url)
    HAPPYHORSE_POLL_FIRST_DELAY    seconds before the first status check (default 8)
    HAPPYHORSE_POLL_INTERVAL       seconds between checks, +2 s each time (default 10)
    HAPPYHORSE_POLL_MAX_INTERVAL   the longest gap between checks (default 20)
    HAPPYHORSE_POLL_TIMEOUT        give up waiting after this many seconds (default 900)

Exit codes: 0 success · 1 task failed (or the API unreachable / failing) · 2 bad usage or
request · 3 auth or credits · 4 timed out waiting (the task keeps rendering).

Results go to stdout (a task id, a path, JSON); messages and the live display go to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from shlex import quote
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from happyhorse.client._base import safe_file_name
from happyhorse.client._sync import Client
from happyhorse.client.errors import (
    APIError,
    HappyHorseError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    TaskFailed,
    TaskNotFound,
    WaitTimeout,
)
from happyhorse.client.polling import finish_wait
from happyhorse.client.types import Element, Shot, Task

__all__ = ["cli_command", "exit_code_for", "parse_element", "parse_shot", "quote", "register", "show_credits"]

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_TIMEOUT = 4

# (env var, wait() keyword, default): the CLI's polling, overridable so tests can poll fast.
POLL_SETTINGS = (
    ("HAPPYHORSE_POLL_FIRST_DELAY", "first_delay", 8.0),
    ("HAPPYHORSE_POLL_INTERVAL", "interval", 10.0),
    ("HAPPYHORSE_POLL_MAX_INTERVAL", "max_interval", 20.0),
    ("HAPPYHORSE_POLL_TIMEOUT", "timeout", 900.0),
)


STATUS_LABELS = {"IN_PROGRESS": "rendering", "SUCCESS": "done", "FAILED": "failed"}


class ModeChoice(StrEnum):
    """``--mode`` values."""

    pro = "pro"
    std = "std"


class AspectChoice(StrEnum):
    """``--aspect`` values."""

    landscape = "16:9"
    portrait = "9:16"
    square = "1:1"


ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="HAPPYHORSE_API_KEY", help="API key.", show_default=False)
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", envvar="HAPPYHORSE_BASE_URL", help="API server (default: https://happyhorse.app)."),
]


# -- parsing ------------------------------------------------------------------------------------


def parse_shot(value: str) -> Shot:
    """``"PROMPT:SECONDS"`` → :class:`Shot`. Split on the last colon: prompts may contain colons."""
    prompt, sep, seconds = value.rpartition(":")
    if not sep or not seconds.strip().isdigit():
        raise typer.BadParameter(f"expected PROMPT:SECONDS, got {value!r}", param_hint="--shot")
    return Shot(prompt=prompt, duration=int(seconds))


def parse_element(value: str) -> Element:
    """``"NAME=URL,URL…"`` → :class:`Element`."""
    name, sep, urls = value.partition("=")
    url_list = [url.strip() for url in urls.split(",") if url.strip()]
    if not sep or not name.strip() or not url_list:
        raise typer.BadParameter(f"expected NAME=URL,URL…, got {value!r}", param_hint="--element")
    return Element(name=name.strip(), element_input_urls=url_list)


def poll_settings() -> dict[str, float]:
    """The wait() keywords, from the ``HAPPYHORSE_POLL_*`` environment variables."""
    settings: dict[str, float] = {}
    for env, keyword, default in POLL_SETTINGS:
        raw = os.environ.get(env)
        try:
            settings[keyword] = float(raw) if raw else default
        except ValueError:
            raise typer.BadParameter(f"{env} must be a number of seconds, got {raw!r}") from None
    return settings


# -- printed hints --------------------------------------------------------------------------------


def cli_command() -> str:
    """How to run this very CLI from the current directory, for hints meant to be pasted.

    ``happyhorse`` when that is what PATH finds; else the script's path (``.venv/bin/happyhorse``
    after ``make run``), relative to the working directory when it lies inside it.
    """

    def shown(path: Path) -> str:
        try:
            return str(path.absolute().relative_to(Path.cwd()))
        except ValueError:
            return str(path.absolute())

    script = Path(sys.argv[0])
    if script.suffix == ".py" or not script.is_file():  # python -m happyhorse
        return f"{quote(shown(Path(sys.executable)))} -m happyhorse"
    found = shutil.which("happyhorse")
    if script.name != "happyhorse" or (found and Path(found).resolve() == script.resolve()):  # embedded, or on PATH
        return "happyhorse"
    text = shown(script)
    return quote(text if "/" in text else f"./{text}")


# -- errors → one line and an exit code ---------------------------------------------------------


def exit_code_for(error: HappyHorseError) -> int:
    """The documented exit code for an SDK error."""
    if isinstance(error, TaskFailed):
        return EXIT_TASK_FAILED
    if isinstance(error, WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(error, InvalidApiKey | InsufficientCredits):
        return EXIT_AUTH
    if isinstance(error, InvalidRequest | TaskNotFound):
        return EXIT_USAGE
    return EXIT_TASK_FAILED  # rate limited, server or network trouble: the run did not succeed


def _describe(error: HappyHorseError) -> str:
    if isinstance(error, APIError):
        return f"{error.message} ({error.error_code or f'HTTP {error.status}'})"
    if isinstance(error, WaitTimeout):
        return f"{error}: {cli_command()} status {error.task_id}"
    return str(error)


@contextmanager
def _cli_errors() -> Iterator[None]:
    """Turn SDK errors into one readable line on stderr and the documented exit code."""
    try:
        yield
    except HappyHorseError as error:
        # typer.echo, not rich: a server message may contain [brackets] rich would eat.
        typer.echo(f"error: {_describe(error)}", err=True)
        raise typer.Exit(exit_code_for(error)) from None


def _client(api_key: str | None, base_url: str | None) -> Client:
    key = api_key or os.environ.get("HAPPYHORSE_API_KEY")
    if not key:
        typer.echo("error: no API key: pass --api-key or set HAPPYHORSE_API_KEY", err=True)
        raise typer.Exit(EXIT_AUTH)
    return Client(key, base_url)


# -- commands -----------------------------------------------------------------------------------


def generate(
    prompt: Annotated[
        str | None, typer.Argument(help="What the video shows (shared context with --shot).", show_default=False)
    ] = None,
    mode: Annotated[ModeChoice | None, typer.Option("--mode", help="Quality (default: std).")] = None,
    duration: Annotated[int | None, typer.Option("--duration", help="Seconds, 3-15 (default: 5).")] = None,
    aspect: Annotated[AspectChoice | None, typer.Option("--aspect", help="Aspect ratio (default: 16:9).")] = None,
    image: Annotated[
        list[str] | None, typer.Option("--image", help="Image URL or file: first frame, then last.")
    ] = None,
    no_sound: Annotated[bool, typer.Option("--no-sound", help="No audio track.")] = False,
    cfg: Annotated[float | None, typer.Option("--cfg", help="Prompt adherence, 0-1 (default: 0.5).")] = None,
    shot: Annotated[
        list[str] | None, typer.Option("--shot", help="A shot of a multi-shot video: PROMPT:SECONDS.")
    ] = None,
    element: Annotated[
        list[str] | None, typer.Option("--element", help="A subject for @NAME: NAME=URL,URL… (URLs or files).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Same seed + same request = same video.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the video and download it.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to save the video (default: ./TASK_ID.mp4); implies --wait.")
    ] = None,
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """Create a video. Prints the task id, or with --wait the path of the downloaded video."""
    shots = [parse_shot(value) for value in shot or []]
    elements = [parse_element(value) for value in element or []]
    if prompt is None and not shots:
        raise typer.BadParameter("give a PROMPT, or at least one --shot", param_hint="PROMPT")
    settings = poll_settings() if (wait or out) else {}
    client = _client(api_key, base_url)
    with client, _cli_errors():
        task = client.generate(
            prompt,
            mode=mode.value if mode else None,
            duration=duration,
            aspect_ratio=aspect.value if aspect else None,
            image_urls=image or None,
            sound=not no_sound,
            cfg_scale=cfg,
            multi_prompt=shots or None,
            elements=elements or None,
            seed=seed,
        )
        if not (wait or out):
            typer.echo(task.task_id)
            return
        final = _wait_live(client, task.task_id, settings)
        path = client.download(final, out if out is not None else Path.cwd() / safe_file_name(final.task_id))
        typer.echo(str(path))


def _wait_live(client: Client, task_id: str, settings: dict[str, float]) -> Task:
    """Follow the task with a live bar on stderr (percent, queue position, elapsed); return the SUCCESS
    task. Against this server the status stream pushes every change; elsewhere it polls."""
    console = Console(stderr=True)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[percent]}"),
        TextColumn("{task.fields[queue]}"),
        TimeElapsedColumn(),
    )
    final: Task | None = None
    try:
        with Progress(*columns, console=console, transient=True) as display:
            row = display.add_task(f"rendering {task_id}", total=100, percent="", queue="")
            for final in client.follow(task_id, **settings):
                label = STATUS_LABELS.get(final.status, final.status.lower())
                queue = f"#{final.queue_position} in queue" if final.queue_position else ""
                if final.eta_seconds:
                    queue = f"{queue}  ~{final.eta_seconds}s left".strip()
                display.update(
                    row,
                    description=f"{label} {task_id}",
                    completed=final.progress or 0,
                    percent=f"{final.progress:.0f}%" if final.progress is not None else "",
                    queue=queue,
                )
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; the task keeps rendering: {cli_command()} status {task_id}", err=True)
        raise typer.Exit(130) from None
    assert final is not None  # follow yields at least once or raises
    return finish_wait(final)


def status(
    task_id: Annotated[str, typer.Argument(help="The task id printed by generate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's data object as JSON.")] = False,
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """Show a task's state (exit code 0 whatever the state; see --json for every field)."""
    client = _client(api_key, base_url)
    with client, _cli_errors():
        task = client.status(task_id)
    if as_json:
        typer.echo(json.dumps(task.raw, indent=2, sort_keys=True))
        return
    rows: list[tuple[str, Any]] = [
        ("task_id", task.task_id),
        ("status", task.status),
        ("progress", f"{task.progress:.0f}%" if task.progress is not None else None),
        ("credits", task.consumed_credits),
        ("created_at", task.created_at.isoformat() if task.created_at else None),
        ("type", task.type),
        ("seed", task.seed),
        ("video_url", task.video_url),
        ("error", task.error_message),
    ]
    for name, value in rows:
        if value is not None:
            typer.echo(f"{name:<11} {value}")


class ListedStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


def list_tasks(
    status: Annotated[ListedStatus | None, typer.Option("--status", help="Only tasks with this status.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show at most N tasks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of the API's task objects.")] = False,
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """List the account's tasks, newest first (all of them unless --limit)."""
    client = _client(api_key, base_url)
    page_size = min(limit, 100) if limit else None
    shown: list[Task] = []
    with client, _cli_errors():
        for task in client.list_tasks(status=status.value if status else None, limit=page_size):
            shown.append(task)
            if limit and len(shown) >= limit:
                break
    if as_json:
        typer.echo(json.dumps([task.raw for task in shown], indent=2, sort_keys=True))
        return
    for task in shown:
        created = task.created_at.isoformat() if task.created_at else "-"
        typer.echo(f"{task.task_id}  {task.status:<11} {created}  {task.type or '-'}")


def delete(
    task_id: Annotated[str, typer.Argument(help="A finished task's id.")],
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """Delete a finished task's video from the server now (the task stays, marked expired)."""
    client = _client(api_key, base_url)
    with client, _cli_errors():
        task = client.delete_result(task_id)
    typer.echo(f"deleted the video of {task.task_id}")


def cancel(
    task_id: Annotated[str, typer.Argument(help="The task to cancel.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's data object as JSON.")] = False,
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """Cancel a task in progress: it stops rendering and its credits come back."""
    client = _client(api_key, base_url)
    with client, _cli_errors():
        task = client.cancel(task_id)
    if as_json:
        typer.echo(json.dumps(task.raw, indent=2, sort_keys=True))
        return
    typer.echo(f"cancelled {task.task_id} ({task.consumed_credits or 0} credits charged)")


def show_credits(api_key: str | None = None, base_url: str | None = None) -> None:
    """Print the API key's balance in credits (a bare integer, for scripts).

    Called by the main CLI's ``credits`` group when no subcommand is given; reads
    ``HAPPYHORSE_API_KEY`` / ``HAPPYHORSE_BASE_URL`` unless given. Exits 3 on a bad key.
    """
    client = _client(api_key, base_url)
    with client, _cli_errors():
        typer.echo(str(client.credits()))


def register(app: typer.Typer) -> None:
    """Add the ``generate`` and ``status`` commands to the main ``happyhorse`` app."""
    app.command("generate")(generate)
    app.command("status")(status)
    app.command("tasks")(list_tasks)
    app.command("delete")(delete)
    app.command("cancel")(cancel)
