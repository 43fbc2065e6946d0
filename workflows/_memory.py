"""A memory-enabled agent's call (``memory_enabled = true``): what it recalls before it runs,
and the turn it leaves in its session's memory after. Both are activities, so their results
are in history: the trace shows what was retrieved, and a replay never searches again.

They run on the flow's task queue with the agent's retry policy, so a store that is down is
retried like the agent would be, and then fails the agent's step (a session dead-letters the
event with the reason).
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from agentflow.models.flow import AgentInput, State
    from agentflow.models.recall import Recalled, RecallInput, RememberInput, query_text
    from agentflow.models.state import changed_keys
    from agentflow.names import MEMORY_REMEMBER, MEMORY_RETRIEVE

# Retrieval and storing a turn embed a text and query a store: seconds, not minutes.
MEMORY_TIMEOUT = timedelta(seconds=60)


async def recall(request: AgentInput, policy: RetryPolicy, activity_id: str) -> Recalled:
    """What ``request.agent`` recalls for its input: the knowledge base and its session's
    earlier turns, best first (``memory_retrieve``)."""
    recalled: Recalled = await workflow.execute_activity(
        MEMORY_RETRIEVE,
        RecallInput(
            flow=request.flow,
            agent=request.agent,
            query=query_text(request.state.data),
            session_id=request.event.session_id or None,
        ),
        activity_id=f"{activity_id}-recall",
        result_type=Recalled,
        start_to_close_timeout=MEMORY_TIMEOUT,
        retry_policy=policy,
        summary=f"{request.agent} recalls",
    )
    return recalled


async def remember(
    request: AgentInput, after: State, policy: RetryPolicy, activity_id: str
) -> None:
    """Keep the turn (the agent's input and what it changed) in its session's memory; a run
    outside a session has no conversation to remember (``memory_remember``)."""
    session_id = request.event.session_id
    if not session_id:
        return
    changed = {
        key: after.data[key] for key in changed_keys(request.state, after) if key in after.data
    }
    said = [v for v in changed.values() if isinstance(v, str)]
    reply = said[0] if len(said) == 1 == len(changed) else json.dumps(changed, default=str)
    turn = int(workflow.now().timestamp() * 1000)
    await workflow.execute_activity(
        MEMORY_REMEMBER,
        RememberInput(
            flow=request.flow,
            agent=request.agent,
            session_id=session_id,
            turn=turn,
            texts=[query_text(request.state.data), reply],
        ),
        activity_id=f"{activity_id}-remember",
        result_type=int,
        start_to_close_timeout=MEMORY_TIMEOUT,
        retry_policy=policy,
        summary=f"{request.agent} remembers",
    )
