"""Handlers for tests/test_processes.py, which runs them in worker child processes.

Each logs its calls to data["log_file"] (one line per call) and hangs on its first call only,
so the attempt retried after the worker stops can complete.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from agentflow import Event, State


def hang_first_call(event: Event, state: State) -> dict[str, Any]:
    """A sync handler stuck for good on its first call (a network call without a timeout,
    say): it runs in the worker's thread pool, where nothing can interrupt it."""
    calls = _log_call(event, state)
    if calls == 1:
        threading.Event().wait()
    return {"calls": calls}


async def ignore_cancellation_first_call(event: Event, state: State) -> dict[str, Any]:
    """An async handler that swallows its cancellation on its first call, so the worker's
    shutdown would wait for it forever."""
    calls = _log_call(event, state)
    while calls == 1:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue
    return {"calls": calls}


def _log_call(event: Event, state: State) -> int:
    """Log this call; the number of calls so far, this one included."""
    log = Path(state.data["log_file"])
    calls = len(log.read_text().splitlines()) + 1 if log.exists() else 1
    with log.open("a", encoding="utf-8") as out:
        out.write(f"{event.target_agent} {calls}\n")
    return calls
