"""Activity side of the live stream: an agent's tokens as they arrive, and its retries.

Call from inside an agent (an LLM provider, or any async handler)::

    async with token_stream() as push:
        async for chunk in reply:
            push(chunk)

Tokens are joined into one ``tokens`` item per ``interval`` (default 0.3 s) and sent to the run's
stream with the contrib's publish signal, which dedupes a resent batch. Each batch is one Signal,
so one history event and one workflow task: batching keeps that cost per interval, not per
token. An LLM agent holds a reply that ends within its first interval (``hold``): it goes with
the activity's result and the workflow publishes it, so a short reply (a tool call, a quick
answer) costs no signal and no workflow task. Every batch carries the attempt, so readers
drop a retried attempt's repeats (agentflow/streaming.py). Outside a workflow's activity (a
unit test calling a handler), it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import activity
from temporalio.contrib.workflow_streams import TopicHandle, WorkflowStreamClient

from agentflow.models.stream import EVENTS_TOPIC, TOKENS_TOPIC, StreamItem

TOKEN_BATCH_SECONDS = 0.3
# A held reply rides on the activity's result next to the state that holds it too: a longer
# one is signalled, so the result stays well under Temporal's payload limit.
HELD_MAX_CHARS = 64 * 1024
log = logging.getLogger(__name__)


def _context() -> activity.Info | None:
    """The activity this code runs in, if it can publish to its run's stream.

    Not from a local activity: it runs inside the run's open workflow task, and a signal to
    the run then makes the server refuse that task's completion, so every local agent since
    the last recorded one would run again.
    """
    try:
        info = activity.info()
    except RuntimeError:  # not in an activity
        return None
    return info if info.workflow_id and not info.is_local else None


def _item(info: activity.Info, kind: str, agent: str | None, **fields: Any) -> StreamItem:
    return StreamItem(kind=kind, agent=agent, at=datetime.now(timezone.utc),
                      attempt=info.attempt, activity_id=info.activity_id, **fields)  # fmt: skip


class TokenPush:
    """What ``token_stream`` yields: call it with text. With ``hold``, ``unsent`` is, after the
    block, the item of a reply no batch was sent of (None if one was, or no text came)."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.unsent: StreamItem | None = None

    def __call__(self, text: str) -> None:
        self.pending.append(text)


@contextlib.asynccontextmanager
async def token_stream(
    agent: str | None = None,
    *,
    event_id: str = "",
    interval: float = TOKEN_BATCH_SECONDS,
    hold: bool = False,
) -> AsyncIterator[TokenPush]:
    """``push(text)`` adds text to the current batch; the batch goes out every ``interval``
    seconds and when the block ends (also when it raises: what was shown stays shown).

    ``hold``: a reply that ends before its first batch went out is not signalled; it is left
    in ``push.unsent`` for the activity's result, and the workflow publishes it to the stream
    as the result arrives (no signal, no extra workflow task). Only an activity whose result
    the workflow reads that way may hold (LLM agents: workflows/_calls.py)."""
    push = TokenPush()
    info = _context()
    if info is None:
        yield push
        push.pending.clear()
        return
    name = agent or info.activity_type
    pending = push.pending
    publisher: WorkflowStreamClient | None = None
    tokens: TopicHandle[StreamItem] | None = None

    def item() -> StreamItem | None:
        text = "".join(pending)
        pending.clear()
        return _item(info, "tokens", name, text=text, event_id=event_id) if text else None

    async def cut() -> None:
        nonlocal publisher, tokens
        if not pending:
            return
        if publisher is None:  # the first batch: the publisher starts here
            publisher = WorkflowStreamClient.from_within_activity(
                batch_interval=timedelta(seconds=interval)
            )
            await publisher.__aenter__()
            tokens = publisher.topic(TOKENS_TOPIC, type=StreamItem)
        if tokens is not None and (batch := item()) is not None:
            tokens.publish(batch)

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(interval)
            await cut()

    ticker = asyncio.create_task(every_interval())
    failed = True
    try:
        yield push
        failed = False
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        held = sum(len(text) for text in pending)
        if hold and publisher is None and not failed and held <= HELD_MAX_CHARS:
            push.unsent = item()  # the whole reply, with the result
        else:
            try:
                await cut()
                if publisher is not None:
                    await publisher.__aexit__(None, None, None)
            except Exception as err:  # the stream is best effort; the agent's work is not
                log.warning("agent %s: tokens not published to the run's stream: %s", name, err)


async def announce_retry(
    agent: str, event_id: str = "", error: str | None = None, *, attempt: int | None = None
) -> None:
    """Publish ``retrying`` when this activity runs again (Temporal retried it): the workflow
    does not see retries, so the attempt says so itself. A failure to publish is logged and
    does not fail the agent."""
    info = _context()
    # ``attempt``: the agent's own (an agent in a batch of local agents counts its own).
    if info is None or (info.attempt if attempt is None else attempt) <= 1:
        return
    data = {"error": error} if error else {}
    try:
        async with WorkflowStreamClient.from_within_activity() as publisher:
            item = _item(info, "retrying", agent, event_id=event_id, data=data)
            publisher.topic(EVENTS_TOPIC, type=StreamItem).publish(item)
    except Exception as err:  # the stream is best effort; the agent's work is not
        log.warning("agent %s: cannot publish its retry to the run's stream: %s", agent, err)
