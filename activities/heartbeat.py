"""Heartbeats from a background task while an activity's work runs (an agent's handler, a tool
call), so that a crashed worker's attempt is retried after ``heartbeat_timeout``, not after
the whole ``start_to_close_timeout``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from temporalio import activity


@contextlib.asynccontextmanager
async def heartbeating(
    timeout: timedelta | None, beat_once: Callable[[], None] = activity.heartbeat
) -> AsyncIterator[None]:
    """Heartbeat (``beat_once``: with details, when an attempt resumes from them) while the
    work runs, so a crashed worker's attempt is retried promptly."""
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            beat_once()
            await asyncio.sleep(timeout.total_seconds() / 3)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
