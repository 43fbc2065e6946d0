"""The fan-out's half of ``[patterns.NAME]``: each published event of a topic a registered
pattern watches is sent to that pattern's workflow for the event's key (signal-with-start of
``agentflow-pattern:FLOW:NAME:KEY`` on the bus's task queue, agentflow/workflows/pattern.py).

The key (a CEL expression) is evaluated here, in the fan-out activity, never in workflow code.
One that fails on the event feeds nothing to that pattern; the others get the event, and the
bus dead-letters it once with reason "expression failed", naming the pattern and expression.
A retried fan-out signals the same event again: the pattern workflow drops the repeat. That
workflow forgets once it has ended (``linger`` after its last window), and a repeat arriving
later would start a new run that takes the event as new; so this process also remembers the
events it had recorded for each key's workflow (``FED_REMEMBERED``) and does not send them
again. A repeat from another process (the shard moved after a worker died) still relies on
``linger``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from temporalio.client import Client

from agentflow.client.bus_filters import Refused
from agentflow.client.recent import RecentKeys
from agentflow.config.expressions import ExpressionFailed, evaluate_key, event_variables
from agentflow.config.patterns import PatternConfig
from agentflow.models.bus import EXPRESSION_FAILED, PublishRequest, Registration, short_id
from agentflow.models.flow import Event
from agentflow.models.pattern import PatternEvent, PatternState
from agentflow.names import (
    BUS_TASK_QUEUE,
    PATTERN_SIGNAL,
    PATTERN_WORKFLOW,
    pattern_workflow_id,
)


def watching(
    registrations: dict[str, Registration], topic: str
) -> list[tuple[str, str, PatternConfig]]:
    """(flow, pattern name, pattern) of every registered pattern that ``topic`` feeds."""
    return [
        (flow, name, pattern)
        for flow in sorted(registrations)
        for name, pattern in registrations[flow].config.patterns.items()
        if pattern.feeds(topic)
    ]


async def feed_patterns(
    client: Client,
    registrations: dict[str, Registration],
    event: Event,
    request: PublishRequest,
    refused: Refused,
) -> int:
    """Send ``event`` to the workflow of each pattern it feeds, for its key; returns how many
    got it. A key that cannot be evaluated is added to ``refused``."""
    found = watching(registrations, request.topic)
    if not found:
        return 0
    metadata = {**request.metadata, **event.metadata}
    variables = event_variables(
        dict(request.data), metadata, request.topic, event.id, request.publisher
    )
    fed = PatternEvent(id=event.id, topic=request.topic, at=datetime.now(timezone.utc))
    sends = []
    for flow, name, pattern in found:
        try:
            key = evaluate_key(pattern.key, variables)
        except ExpressionFailed as err:
            refused.add(f"pattern {flow}.{name}: key {err}", EXPRESSION_FAILED)
            continue
        sends.append(_feed(client, flow, name, pattern, key, fed))
    await asyncio.gather(*sends)
    return len(sends)


# (pattern workflow id, event id) this process had recorded.
FED_REMEMBERED = 100_000
_fed: RecentKeys[tuple[str, str]] = RecentKeys(FED_REMEMBERED)


async def _feed(
    client: Client, flow: str, name: str, pattern: PatternConfig, key: str, event: PatternEvent
) -> None:
    """``signal_pattern``, unless this process had the event recorded for that key already."""
    fed = (short_id(pattern_workflow_id(flow, name, key)), event.id)
    if fed not in _fed:
        await signal_pattern(client, flow, name, pattern, key, event)
        _fed.add(fed)


async def signal_pattern(
    client: Client,
    flow: str,
    name: str,
    pattern: PatternConfig,
    key: str,
    event: PatternEvent,
    state: PatternState | None = None,
) -> None:
    """Signal-with-start the pattern's workflow for ``key`` (``state``: its first input, for
    tests of the run's bounds; else a fresh one)."""
    start = state or PatternState(flow=flow, name=name, key=key, config=pattern)
    await client.start_workflow(
        PATTERN_WORKFLOW, start, id=short_id(pattern_workflow_id(flow, name, key)),
        task_queue=BUS_TASK_QUEUE, start_signal=PATTERN_SIGNAL, start_signal_args=[event],
        static_summary=f"pattern {flow}.{name} ({pattern.kind}) for key {key[:80]}",
    )  # fmt: skip
