"""A run's live stream: what it publishes (``StreamItem``) and how a client reads it.

Built on ``temporalio.contrib.workflow_streams``: each run (and each session) hosts a
``WorkflowStream``; the workflow appends items as agents start and end (no command is recorded,
so replay is unaffected), activities publish token batches and retry marks through the stream's
signal, and readers long-poll its update (``stream`` below; ``agentflow watch``). A read costs one
Update per batch of items, so a watcher adds history events to the run it watches; a run nobody
watches pays only for the items it keeps in memory (bench/RESULTS.md, "Streaming").

Retries: Temporal retries an activity without the workflow knowing, so the activity marks its
retry itself (``retrying``, ``attempt`` on every token batch). ``stream`` drops token batches of
a superseded attempt and, when a retry streams the same text again, only the part not shown
yet: a reader never sees an agent's tokens twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

EVENTS_TOPIC = "agentflow.events"  # agents started / completed / failed, hand-offs, approvals
TOKENS_TOPIC = "agentflow.tokens"  # batches of an LLM agent's output as it is generated
TOPICS = (EVENTS_TOPIC, TOKENS_TOPIC)
# Readers wait this long between polls when caught up (the contrib's default): each poll is an
# Update recorded in the run's history, so faster polling costs history, not just CPU.
POLL_COOLDOWN = timedelta(milliseconds=100)

Kind = Literal[
    "flow_started", "flow_finished", "started", "completed", "failed", "retrying", "tokens",
    "handoff", "published", "approval_waiting", "approval_decided",
]  # fmt: skip


class StreamItem(BaseModel):
    """One thing that happened in a run. ``kind`` is one of ``Kind`` (or a newer name: readers
    show unknown kinds as they are)."""

    kind: str
    agent: str | None = None
    at: datetime
    event_id: str = ""  # the flow event (a session runs many)
    attempt: int | None = None  # activity attempt: retries and token batches
    activity_id: str | None = None  # which call of the agent (an agent may run many times)
    text: str | None = None  # tokens
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Streamed:
    """An item and its offset in the stream (resume with ``from_offset=offset + 1``)."""

    offset: int
    item: StreamItem


@dataclass
class _Call:
    attempt: int = 0
    shown: str = ""  # token text readers have seen, across attempts
    text: str = ""  # token text of the current attempt


@dataclass
class TokenDedupe:
    """Per activity call: drop token batches of superseded attempts, and the part of a retried
    attempt's text that readers have seen already."""

    calls: dict[str, _Call] = field(default_factory=dict)

    def admit(self, item: StreamItem) -> StreamItem | None:
        if item.activity_id is None or item.attempt is None:
            return item
        call = self.calls.setdefault(item.activity_id, _Call())
        if item.attempt < call.attempt:
            return None  # a zombie attempt still flushing after its retry began
        if item.attempt > call.attempt:
            call.attempt, call.text = item.attempt, ""
        if item.kind != "tokens" or not item.text:
            return item
        call.text += item.text
        if call.shown.startswith(call.text):
            return None  # the retry repeats what was shown
        if call.text.startswith(call.shown):
            new, call.shown = call.text[len(call.shown) :], call.text
            return item.model_copy(update={"text": new})
        # The retry diverged from what was shown: the call's text so far replaces all of it.
        replaces, call.shown = len(call.shown), call.text
        data = {**item.data, "replaces": replaces}
        return item.model_copy(update={"text": call.text, "data": data})


async def stream(
    client: Client,
    workflow_id: str,
    *,
    from_offset: int = 0,
    tokens: bool = True,
    poll_cooldown: timedelta = POLL_COOLDOWN,
) -> AsyncIterator[Streamed]:
    """The items of a run (or a session) from ``from_offset`` on, live, following
    continue-as-new; ends when the run has ended and every retained item was read."""
    reader = WorkflowStreamClient.create(client, workflow_id)
    dedupe = TokenDedupe()
    topics = list(TOPICS) if tokens else [EVENTS_TOPIC]
    async for raw in reader.subscribe(
        topics, from_offset=from_offset, result_type=StreamItem, poll_cooldown=poll_cooldown
    ):
        item = dedupe.admit(raw.data)
        if item is not None:
            yield Streamed(raw.offset, item)
