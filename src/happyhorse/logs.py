"""Logging for every process: plain lines, or one JSON object per line with
``HAPPYHORSE_LOG_FORMAT=json``, carrying the request id and task id where known.

The ids ride on context variables: the request-id layer sets ``request_id`` for the request's
whole handling, and the render path sets ``task_id`` while it works on a task.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("happyhorse_request_id", default=None)
task_id: ContextVar[str | None] = ContextVar("happyhorse_task_id", default=None)

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("task_id", task_id)):
            value = getattr(record, name, None) or var.get()
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str = "plain", *, prefix: str = "") -> None:
    """Set up the root logger once per process (``prefix`` names the process in plain lines)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT.replace("%(name)s", f"{prefix}%(name)s")))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    if log_format == "json":  # uvicorn's own loggers keep their handlers unless told otherwise
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers[:] = []
            logging.getLogger(name).propagate = True
