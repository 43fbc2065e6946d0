"""Handlers for the nested-flow tests (tests/test_nested_flows.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentflow import Event, State


async def wait_until_cancelled(event: Event, state: State) -> None:
    """Marks that it started (a line in data["started_file"]), then waits to be cancelled."""
    with Path(state.data["started_file"]).open("a", encoding="utf-8") as started:
        started.write(f"{event.target_agent}\n")
    await asyncio.sleep(120)
