"""Handlers for the event CLI tests (tests/test_cli_events.py)."""

from __future__ import annotations

from pathlib import Path

from agentflow import Event, FatalError, State


def remember(event: Event, state: State) -> State:
    """Adds ``data["msg"]`` to the session context's history and shows what it saw there;
    with ``data["calls_file"]``, writes one line per call (the event id) to count calls."""
    seen = list(state.context.get("history", []))
    state.context["history"] = [*seen, state.data.get("msg")]
    state.data["history_before"] = seen
    calls = state.data.get("calls_file")
    if calls:
        with Path(calls).open("a", encoding="utf-8") as out:
            out.write(event.id + "\n")
    return state


def check(event: Event, state: State) -> None:
    """Fails for good while the file ``data["block_file"]`` exists: a test removes the cause,
    then redrives the same event."""
    block = state.data.get("block_file")
    if block and Path(block).exists():
        raise FatalError(f"blocked by {Path(block).name}")
