"""The HappyHorse 1.0 API client: :class:`Client`, :class:`AsyncClient` and their types.

Only ``httpx`` is needed here; nothing of the server (FastAPI, SQLAlchemy, torch) is imported,
so the SDK can ship on its own.
"""

from happyhorse.client._async import AsyncClient
from happyhorse.client._base import GenerateParams
from happyhorse.client._sync import Client
from happyhorse.client.errors import (
    APIConnectionError,
    APIError,
    Conflict,
    HappyHorseError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    RateLimited,
    ServerError,
    StreamUnavailable,
    TaskFailed,
    TaskNotFound,
    WaitTimeout,
)
from happyhorse.client.types import AspectRatio, Element, Mode, Shot, Task, TaskStatus

__all__ = [
    "APIConnectionError",
    "APIError",
    "AspectRatio",
    "AsyncClient",
    "Client",
    "Conflict",
    "Element",
    "GenerateParams",
    "HappyHorseError",
    "InsufficientCredits",
    "InvalidApiKey",
    "InvalidRequest",
    "Mode",
    "RateLimited",
    "ServerError",
    "Shot",
    "StreamUnavailable",
    "Task",
    "TaskFailed",
    "TaskNotFound",
    "TaskStatus",
    "WaitTimeout",
]
