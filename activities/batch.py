"""The ``run_local_agents`` activity: consecutive local agents of a sequence, one after another,
in one local activity (workflows/_batch.py decides which agents and says why).

Each agent runs exactly as in its own ``run_agent`` call (hooks, output checks, its own
attempt), with the previous agent's output state. The first agent's failure fails the activity,
so Temporal retries it with that agent's retry policy; a later agent's failure stops the batch
and is returned with the results so far, for the workflow to retry or route as before.
"""

from __future__ import annotations

import asyncio
import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agentflow.activities.agent import BATCH_ATTEMPT, AgentActivities
from agentflow.activities.metrics import measured_agent
from agentflow.models.batch import BatchFailure, BatchInput, BatchOutput
from agentflow.models.flow import AgentInput, AgentOutput
from agentflow.names import LOCAL_BATCH


class LocalBatch:
    """The batch activity, calling agents through the worker's ``AgentActivities``."""

    def __init__(self, agents: AgentActivities) -> None:
        self._agents = agents

    @activity.defn(name=LOCAL_BATCH)
    async def run_local_agents(self, batch: BatchInput) -> BatchOutput:
        began = time.monotonic()
        done = BatchOutput(agents=[], activity_ids=[], outputs=[])
        state, source = batch.state, batch.event.source_agent
        for index, call in enumerate(batch.calls):
            if index and time.monotonic() - began > batch.budget_seconds:
                break  # the workflow schedules the rest: a workflow task may end in between
            first = index == 0
            attempt = batch.first_attempt + activity.info().attempt - 1 if first else 1
            request = AgentInput(
                agent=call.agent, spec=call.spec, state=state, flow=batch.flow, llm=batch.llm,
                event=batch.event.model_copy(update={"source_agent": source}), hooks=batch.hooks,
            )  # fmt: skip
            try:
                output = await self._one(request, attempt)
            except ApplicationError as err:
                if first:
                    raise
                done.failure = _failure(call.agent, err, attempt)
                return done
            if getattr(output, "approval_required", None) is not None:
                done.run_alone = True
                return done
            done.agents.append(call.agent)
            done.activity_ids.append(call.activity_id)
            done.outputs.append(output)
            state, source = output.state, call.agent
        return done

    async def _one(self, request: AgentInput, attempt: int) -> AgentOutput:
        """One agent's attempt, bounded by its own ``timeout_seconds`` (the activity's timeout
        covers the whole batch), with the span, metrics and log lines of an agent that is its
        own activity (the worker's interceptor sees only the batch, and does not measure it)."""
        token = BATCH_ATTEMPT.set(attempt)
        seconds = request.spec.timeout_seconds
        try:
            with measured_agent(request.agent, request.flow, attempt):
                try:
                    return await asyncio.wait_for(self._agents.run_agent(request), seconds)
                except asyncio.TimeoutError:
                    raise ApplicationError(
                        f"agent {request.agent!r} timed out after {seconds:g} s "
                        "(start-to-close, in a batch of local agents)",
                        {"attempt": attempt},
                        type="Timeout",
                    ) from None
        finally:
            BATCH_ATTEMPT.reset(token)


def _failure(agent: str, err: ApplicationError, attempt: int) -> BatchFailure:
    detail = err.details[0] if err.details and isinstance(err.details[0], dict) else {}
    rejected_by = detail.get("rejected_by")
    return BatchFailure(
        agent=agent, message=err.message, type=err.type or "ApplicationError",
        non_retryable=err.non_retryable, attempt=int(detail.get("attempt") or attempt),
        rejected_by=rejected_by if isinstance(rejected_by, str) else None,
    )  # fmt: skip
