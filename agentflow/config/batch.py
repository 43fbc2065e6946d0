"""``batch = { max_events = 100, max_wait = "5s" }`` on a subscriber agent: its bus deliveries
are gathered into batches (workflows/batcher.py), and the agent is called once per batch with
the events, in the order they reached the batcher, as ``state.data["events"]``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentflow.config._base import StrictModel
from agentflow.config.cache import Duration

# A batch travels as one session event, at most 512 KB of JSON (agentflow/models/batcher.py):
# a batch of more goes out as smaller ones, so this bounds the count, not the bytes.
MAX_BATCH_EVENTS = 1000


class BatchConfig(StrictModel):
    """``[agents.NAME] batch``: how many bus deliveries the agent takes in one call."""

    # A batch is called as soon as this many deliveries wait ...
    max_events: Annotated[int, Field(ge=1, le=MAX_BATCH_EVENTS)] = 100
    # ... or this long after the first of them arrived ("5s", "500ms", or seconds).
    max_wait: Duration = 5.0


def check_batch(batch: BatchConfig | None, subscribes: list[object]) -> None:
    """A batch gathers bus deliveries, so it needs something subscribed."""
    if batch is not None and not subscribes:
        raise ValueError(
            "batch gathers bus deliveries: give the agent subscribes (the topics it batches)"
        )
