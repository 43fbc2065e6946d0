"""Handlers for the observability tests (kept apart from tests/agents.py to ease merges)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agentflow import Event, State


def gate(event: Event, state: State) -> dict[str, Any]:
    """Waits until data["gate_file"] exists, so a test can look at a run mid-way."""
    path = Path(state.data["gate_file"])
    deadline = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {path} never opened")
        time.sleep(0.05)
    return {"gated": event.target_agent}
