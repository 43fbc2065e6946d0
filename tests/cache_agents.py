"""Handlers of tests/test_result_cache.py: each counts its calls (and when they were made),
so a test sees whether an agent ran or its result came from the cache."""

from __future__ import annotations

import time

from agentflow import Event, State

CALLS: dict[str, list[float]] = {}


def double(event: Event, state: State) -> dict[str, int]:
    """Doubles ``n`` (under ``label``, so tests do not share keys); counts its calls."""
    CALLS.setdefault(str(state.data.get("label", "")), []).append(time.time())
    return {"doubled": 2 * int(state.data["n"])}


def logged(event: Event, state: State) -> dict[str, int]:
    """Doubles ``n``, writing a line to ``log_file`` per call (it runs in a worker process)."""
    with open(str(state.data["log_file"]), "a", encoding="utf-8") as log:
        log.write("called\n")
    return {"doubled": 2 * int(state.data["n"])}


def calls(label: str) -> int:
    return len(CALLS.get(label, []))
