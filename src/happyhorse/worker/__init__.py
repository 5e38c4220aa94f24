"""Runs one task end to end: fetch inputs, render in the engine process, store, complete."""
