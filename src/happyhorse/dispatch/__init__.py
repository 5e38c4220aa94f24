"""Dispatch: how queued tasks reach an engine (embedded runner, or procrastinate workers)."""
