"""How a workflow calls an agent: its activity (``agent:NAME``; ``run_agent`` in runs from
before that patch), regular or local. What a failed call says is in workflows/_failures.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig, RetrySettings
    from agentflow.models.flow import AgentHooks, AgentInput, AgentOutput
    from agentflow.models.stream import StreamItem
    from agentflow.models.usage import TokenBudget
    from agentflow.names import RUN_AGENT, agent_activity_type, agent_queue
    from agentflow.workflows._llm_loop import finish_llm_agent

# Since this patch an agent runs as activity type "agent:NAME" (agentflow/activity_types.py);
# histories without its marker replay with "run_agent", as they were recorded.
AGENT_TYPE_PATCH = "agent-activity-type"
# A crashed worker's attempt is retried after this long without a heartbeat.
HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class AgentCall:
    """How an agent's activity is scheduled. An LLM agent's model steps after its first
    activity reuse it, each with its own ``activity_id`` and what is left of ``time_left``."""

    policy: RetryPolicy
    local: bool
    activity_id: str
    time_left: float | None = None  # seconds until the event's deadline; None: no deadline
    priority_key: int | None = None  # the event's priority on the task queue; None: default
    # Where an LLM reply that came whole with its result goes (the run's live stream).
    tokens_to: Callable[[StreamItem], None] | None = None


def retry_policy(retry: RetrySettings, maximum_attempts: int) -> RetryPolicy:
    """An agent's (or a hook point's) ``[*.retry]`` settings as Temporal's RetryPolicy."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry.initial_interval_seconds),
        backoff_coefficient=retry.backoff_coefficient,
        maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
        maximum_attempts=maximum_attempts,
        non_retryable_error_types=retry.non_retryable_errors,
    )


def agent_hooks(config: FlowConfig) -> AgentHooks | None:
    """The agent-level ``[hooks]`` callbacks the ``run_agent`` activity runs, None if none."""
    hooks = config.hooks
    found = AgentHooks(
        before_agent_run=hooks.at("before_agent_run"),
        after_agent_run=hooks.at("after_agent_run"),
        agent_error=hooks.at("agent_error"),
    )
    return found if found.before_agent_run or found.after_agent_run or found.agent_error else None


async def run_agent_activity(
    request: AgentInput, call: AgentCall, budget: TokenBudget | None = None
) -> AgentOutput:
    """The agent's activity (``schedule_agent``) and, when an LLM agent's model asks for
    tools, the tool calls and model steps after it (workflows/_llm_loop.py). ``budget``:
    [orchestration] max_tokens_per_run and what the run used so far (None: no cap)."""
    started = workflow.now()
    first = await schedule_agent(request, call)

    async def model_step(following: AgentInput, step_id: str) -> AgentOutput:
        spent = (workflow.now() - started).total_seconds()
        left = None if call.time_left is None else max(call.time_left - spent, 1.0)
        return await schedule_agent(following, replace(call, activity_id=step_id, time_left=left))

    return await finish_llm_agent(request, first, model_step, activity_id=call.activity_id,
                                  policy=call.policy, budget=budget)  # fmt: skip


async def schedule_agent(request: AgentInput, call: AgentCall) -> AgentOutput:
    """Schedule the agent as a regular activity, or as a local activity when ``call.local``.

    Its activity type is ``agent:NAME`` (``run_agent`` when replaying a run from before the
    patch), so the UI's rows, ``temporal workflow show`` and the SDK's metrics name the agent;
    ``activity_id`` names it too, so replay notices a change in which agent runs when.

    A local activity runs in the worker that runs the workflow, with no server round trip; its
    result is recorded (as a marker) only when the workflow task completes, so after a crash the
    local steps since the last completed workflow task run again. It has no heartbeat: its
    ``start_to_close`` timeout bounds each attempt, and retries whose backoff exceeds the local
    retry threshold (1 minute) wait on a durable timer instead of in the worker.

    ``time_left`` (an event's deadline) bounds every attempt and all retries together;
    ``priority_key`` orders the activity task among others waiting on the task queue (local
    activities never wait on a queue, so they ignore it).
    """
    # Memoised per run: the marker is recorded once, by the first agent call.
    kind = agent_activity_type(request.agent) if workflow.patched(AGENT_TYPE_PATCH) else RUN_AGENT
    time_left, priority_key = call.time_left, call.priority_key
    seconds = request.spec.timeout_seconds
    if time_left is not None:
        seconds = min(seconds, time_left)
    timeout = timedelta(seconds=seconds)
    overall = timedelta(seconds=time_left) if time_left is not None else None
    if call.local:
        output: AgentOutput = await workflow.execute_local_activity(
            kind,
            request,
            activity_id=call.activity_id,
            result_type=AgentOutput,
            start_to_close_timeout=timeout,
            schedule_to_close_timeout=overall,
            retry_policy=call.policy,
            summary=request.agent,
        )
        return output
    heartbeat = min(HEARTBEAT_SECONDS, seconds)
    # A rate-limited agent runs on a task queue of its own, which the server rate-limits
    # across every worker (agentflow/rate_limits.py); others stay on the workflow's queue.
    limited = request.spec.rate_limit is not None
    output = await workflow.execute_activity(
        kind,
        request,
        activity_id=call.activity_id,
        task_queue=agent_queue(workflow.info().task_queue, request.agent) if limited else None,
        result_type=AgentOutput,
        start_to_close_timeout=timeout,
        schedule_to_close_timeout=overall,
        heartbeat_timeout=timedelta(seconds=heartbeat),
        retry_policy=call.policy,
        summary=request.agent,
        priority=Priority(priority_key=priority_key) if priority_key else Priority.default,
    )
    if output.tokens is not None:  # records nothing: the stream is the workflow's memory
        if call.tokens_to is not None:
            call.tokens_to(output.tokens)
        output.tokens = None
    return output
