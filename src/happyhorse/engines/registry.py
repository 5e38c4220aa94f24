"""Which engine renders, and what the API process may check before accepting a task.

``create_engine`` runs only in an engine process (it may import torch); ``request_checker`` runs in
the API process and must stay torch-free.
"""

from __future__ import annotations

from collections.abc import Callable

from happyhorse.config import Settings
from happyhorse.contract import GenerateRequest
from happyhorse.engines.base import Engine

ENGINES = ("synthetic", "diffusers")


def create_engine(settings: Settings) -> Engine:
    if settings.engine == "synthetic":
        from happyhorse.engines.synthetic import SyntheticEngine

        return SyntheticEngine()
    if settings.engine == "diffusers":
        from happyhorse.engines.diffusers.engine import DiffusersEngine

        return DiffusersEngine.from_settings(settings)
    raise ValueError(f"HAPPYHORSE_ENGINE must be one of {', '.join(ENGINES)}, not {settings.engine!r}")


def request_checker(settings: Settings) -> Callable[[GenerateRequest], None]:
    """A check the API runs at submit time, raising ``InvalidRequest`` for what this engine can't do."""
    if settings.engine == "diffusers":
        from happyhorse.engines.diffusers.profiles import load_profiles

        return load_profiles(settings.models).check_request
    if settings.engine not in ENGINES:
        raise ValueError(f"HAPPYHORSE_ENGINE must be one of {', '.join(ENGINES)}, not {settings.engine!r}")
    return lambda request: None
