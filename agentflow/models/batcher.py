"""A batched subscriber's batcher (workflows/batcher.py): its state, what it sends, and the
batch event its subscriber's session runs. Pure: workflow code imports this module."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from agentflow.config import FlowConfig
from agentflow.models.bus import short_id
from agentflow.models.flow import Event

# The metadata keys of a batch event: its id, and how many events it holds.
BATCH = "batch"
BATCH_SIZE = "batch_size"
# What ``state.data`` of a batch's call holds: the events, in order.
EVENTS = "events"
# Delivery ids a batcher remembers, newest last (a retried fan-out delivers again).
MAX_REMEMBERED = 5000
# A batch event's JSON stays within half a session's queue budget (1 MB of queued event data,
# workflows/_session_queue.py), so that the next batch fits beside it; far within a payload.
MAX_BATCH_BYTES = 512 * 1024
# A batcher with nothing waiting ends after this long (the next delivery starts it again).
IDLE_SECONDS = 300.0
# A batch sent is awaited to its outcome (``BatchSend.wait``): the sending activity heartbeats
# meanwhile, so a worker that died is noticed within this long and the wait asked again.
HEARTBEAT_SECONDS = 10.0


class BatcherState(BaseModel):
    """A batcher's run input; continue-as-new carries what waits and what it has seen."""

    flow: str
    agent: str
    task_queue: str  # the subscriber's: its worker calls the agent
    session_id: str  # the subscriber's session that runs the batches
    config: FlowConfig  # what a delivery runs (agentflow/models/bus.py delivery_config)
    max_events: int
    max_wait_seconds: float
    pending: list[Event] = Field(default_factory=list)
    arrived: list[datetime] = Field(default_factory=list)  # when each pending one came
    seen: list[str] = Field(default_factory=list)
    batches: int = 0  # sent so far, by every run


class BatchSend(BaseModel):
    """The ``batch_deliver`` activity's input: a batch event into the subscriber's session."""

    config: FlowConfig
    task_queue: str
    event: Event
    # Wait for the batch's outcome in the session before returning, so that the next batch
    # goes out only after it (a slow agent cannot fill its session's queue).
    wait: bool = False


class BatcherView(BaseModel):
    """The batcher query's answer."""

    waiting: int
    batches: int
    oldest: datetime | None = None


def batch_event(events: list[Event], session_id: str, now: datetime) -> Event:
    """One event holding ``events`` in order; its id is a digest of theirs, so the same batch
    sent again (a retried activity) dedupes in the session."""
    digest = hashlib.sha256("\n".join(e.id for e in events).encode()).hexdigest()[:32]
    batch_id = short_id(f"batch-{digest}")
    items: list[dict[str, Any]] = [_item(e) for e in events]
    return Event(id=batch_id, timestamp=now, session_id=session_id, data={EVENTS: items},
                 metadata={BATCH: batch_id, BATCH_SIZE: str(len(events)),
                           "session_id": session_id},
                 source_agent=events[0].source_agent)  # fmt: skip


def _item(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "data": event.data,
        "metadata": event.metadata,
        "source_agent": event.source_agent,
        "timestamp": event.timestamp.isoformat(),
    }


def batched_events(event: Event) -> list[Event]:
    """The events of a batch event (none for any other event): each a dead letter of its own
    when the batch fails for good."""
    if BATCH not in event.metadata:
        return []
    items = event.data.get(EVENTS)
    if not isinstance(items, list):
        return []
    batch = event.metadata[BATCH]
    return [
        Event(
            id=str(item["id"]),
            session_id=event.session_id,
            data=dict(item["data"]),
            metadata={**item["metadata"], BATCH: batch},
            source_agent=str(item.get("source_agent", "")),
        )
        for item in items
        if isinstance(item, dict)
        and "id" in item
        and isinstance(item.get("data"), dict)
        and isinstance(item.get("metadata"), dict)
    ]
