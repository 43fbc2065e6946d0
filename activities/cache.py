"""The result cache inside the agent activity (agents with ``cache = { ttl = ... }``).

Why in the activity, not in an activity of its own before it: a hit then costs no extra
activity, and the workflow code stays as it was, so runs from before the cache replay
unchanged. The hit is still in history: it is the agent activity's result, marked
``cached`` (the trace shows it as ``cached``; ``agentflow usage`` shows what it saved).

A hit runs nothing: no handler, no model request, no agent hooks, no emit(). A store that
cannot be read or written is logged and the agent runs as without a cache: the cache saves
work, it never fails an agent. Not cached: a handler's request for approval, and an LLM
agent's model step that asks for tools (its tools run in the workflow; the answer after
them depends on their results, so only the first step's input is a key).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from temporalio import activity

from agentflow.activities.registry import AgentRegistry
from agentflow.client.result_cache import CachedResult, cache_key, result_store
from agentflow.models.flow import AgentInput, AgentOutput


def cacheable(request: AgentInput) -> bool:
    """Whether ``request`` may be answered from (and stored in) the cache."""
    return request.spec.cache is not None and request.turn is None


async def cached_output(
    registry: AgentRegistry, request: AgentInput, attempt: int
) -> AgentOutput | None:
    """The cached result of ``request`` as the activity's output, None on a miss."""
    store = result_store(registry.configs.get(request.flow))
    started_at = datetime.now(timezone.utc)
    try:
        key = cache_key(request)
        entry = await asyncio.to_thread(store.get, request.flow, request.agent, key)
    except Exception as err:  # an unreadable store: run the agent
        activity.logger.warning("result cache of agent %r not read: %s", request.agent, err)
        return None
    if entry is None:
        return None
    return AgentOutput(
        state=entry.state, started_at=started_at, ended_at=datetime.now(timezone.utc),
        attempt=attempt, cached=True, saved=entry.usage,
    )  # fmt: skip


async def store_output(registry: AgentRegistry, request: AgentInput, output: AgentOutput) -> None:
    """Keep ``output`` for the agent's ttl (a failed write is logged, not raised)."""
    ttl = request.spec.cache.ttl if request.spec.cache else 0.0
    if output.approval_required is not None or output.turn is not None or ttl <= 0:
        return
    now = time.time()
    entry = CachedResult(state=output.state, usage=output.usage, stored_at=now,
                         expires_at=now + ttl)  # fmt: skip
    store = result_store(registry.configs.get(request.flow))
    try:
        key = cache_key(request)
        await asyncio.to_thread(store.put, request.flow, request.agent, key, entry)
    except Exception as err:
        activity.logger.warning("result cache of agent %r not written: %s", request.agent, err)
