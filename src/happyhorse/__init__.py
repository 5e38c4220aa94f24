"""happyhorse: a self-hostable HappyHorse 1.0 video API, and the Python SDK to call any such API.

    >>> import happyhorse
    >>> client = happyhorse.Client()          # HAPPYHORSE_API_KEY, HAPPYHORSE_BASE_URL
    >>> task = client.generate_and_wait("A horse galloping on a beach at sunset", duration=5)
    >>> client.download(task, "horse.mp4")

Importing this package loads only the SDK (``httpx``); the server lives in subpackages that
are imported on demand, never from here.
"""

from happyhorse.client import (
    APIConnectionError,
    APIError,
    AsyncClient,
    Client,
    Conflict,
    Element,
    HappyHorseError,
    InsufficientCredits,
    InvalidApiKey,
    InvalidRequest,
    RateLimited,
    ServerError,
    Shot,
    StreamUnavailable,
    Task,
    TaskFailed,
    TaskNotFound,
    WaitTimeout,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "Client",
    "Conflict",
    "Element",
    "HappyHorseError",
    "InsufficientCredits",
    "InvalidApiKey",
    "InvalidRequest",
    "RateLimited",
    "ServerError",
    "Shot",
    "StreamUnavailable",
    "Task",
    "TaskFailed",
    "TaskNotFound",
    "WaitTimeout",
    "__version__",
]
