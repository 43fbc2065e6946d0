"""The agents every system runs: no-ops returning a small dict, and a 10 ms-sleep variant."""

from __future__ import annotations

import asyncio
from typing import Any

from agentflow import Event, State
from bench.calls import mark

SLEEP_SECONDS = 0.01


async def noop(event: Event, state: State) -> dict[str, Any]:
    mark()
    return {event.target_agent: True}


async def sleep10(event: Event, state: State) -> dict[str, Any]:
    mark()
    await asyncio.sleep(SLEEP_SECONDS)
    return {event.target_agent: True}


async def inflate(event: Event, state: State) -> dict[str, Any]:
    """The first agent adds data["inflate_bytes"] bytes to the state; the others carry it (W5)."""
    mark()
    if "blob" in state.data:
        return {event.target_agent: True}
    return {"blob": "x" * int(state.data["inflate_bytes"]), event.target_agent: True}


HANDLERS = {"noop": noop, "sleep": sleep10, "inflate": inflate}
