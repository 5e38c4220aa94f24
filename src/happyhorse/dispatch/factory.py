"""Pick the dispatcher for this process from the settings (never a code fork in the routes)."""

from __future__ import annotations

from happyhorse.config import Settings
from happyhorse.dispatch.base import Dispatcher
from happyhorse.storage.base import ResultStore
from happyhorse.store.db import Database


def create_dispatcher(settings: Settings, db: Database, store: ResultStore) -> Dispatcher:
    mode = settings.dispatch_mode
    if mode == "embedded":
        from happyhorse.dispatch.embedded import EmbeddedDispatcher

        return EmbeddedDispatcher(db, settings, store)
    if mode == "procrastinate":
        from happyhorse.dispatch.distributed import DistributedDispatcher

        return DistributedDispatcher(db, settings, store)
    raise ValueError(f"HAPPYHORSE_DISPATCH={mode!r} is not available")
