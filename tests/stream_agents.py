"""Handlers for the streaming tests: an agent that streams its reply as tokens."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity

from agentflow import Event, State
from agentflow.activities.tokens import token_stream

WORDS = ["hel", "lo ", "wor", "ld"]


async def talker(event: Event, state: State) -> dict[str, Any]:
    """Streams "hello world" in four chunks; with ``data["fail_first"]`` the first attempt
    streams half of it and fails (a retryable error), so the retry streams it again."""
    failing = bool(state.data.get("fail_first")) and activity.info().attempt == 1
    async with token_stream(event.target_agent, event_id=event.id, interval=0.05) as push:
        for word in WORDS[:2] if failing else WORDS:
            push(word)
            await asyncio.sleep(0.03)  # a model generating: several batches per reply
    if failing:
        raise ConnectionError("the model dropped the connection")
    return {"said": "".join(WORDS)}
