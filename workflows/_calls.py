"""How a workflow calls an agent: its activity (``agent:NAME``; ``run_agent`` in runs from
before that patch), regular or local, and what its failures say about attempts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from agentflow.activity_types import RUN_AGENT, agent_activity_type
    from agentflow.config import FlowConfig, RetrySettings
    from agentflow.models import AgentHooks, AgentInput, AgentOutput, AgentResult
    from agentflow.rate_limits import agent_queue
    from agentflow.usage import TokenBudget, Usage
    from workflows._llm_loop import finish_llm_agent

# Since this patch an agent runs as activity type "agent:NAME" (agentflow/activity_types.py);
# histories without its marker replay with "run_agent", as they were recorded.
AGENT_TYPE_PATCH = "agent-activity-type"
# A crashed worker's attempt is retried after this long without a heartbeat.
HEARTBEAT_SECONDS = 10.0


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


def deadline_message(deadline: datetime | None, agent: str, err: BaseException) -> str | None:
    """Why an agent failed when its event's deadline ran out (schedule-to-close)."""
    if deadline is None or not isinstance(err, ActivityError):
        return None
    if err.retry_state != RetryState.TIMEOUT and not isinstance(err.cause, TimeoutError):
        return None
    return f"the event's deadline {deadline.isoformat()} passed while {agent!r} ran"


async def run_agent_activity(
    request: AgentInput,
    policy: RetryPolicy,
    *,
    local: bool,
    activity_id: str,
    time_left: float | None = None,
    priority_key: int | None = None,
    budget: TokenBudget | None = None,
) -> AgentOutput:
    """The agent's activity (``schedule_agent``) and, when an LLM agent's model asks for
    tools, the tool calls and model steps after it (workflows/_llm_loop.py). ``budget``:
    [orchestration] max_tokens_per_run and what the run used so far (None: no cap)."""
    started = workflow.now()
    first = await schedule_agent(request, policy, local=local, activity_id=activity_id,
                                 time_left=time_left, priority_key=priority_key)  # fmt: skip

    async def model_step(following: AgentInput, step_id: str) -> AgentOutput:
        spent = (workflow.now() - started).total_seconds()
        left = None if time_left is None else max(time_left - spent, 1.0)
        return await schedule_agent(following, policy, local=local, activity_id=step_id,
                                    time_left=left, priority_key=priority_key)  # fmt: skip

    return await finish_llm_agent(request, first, model_step, activity_id=activity_id,
                                  policy=policy, budget=budget)  # fmt: skip


async def schedule_agent(
    request: AgentInput,
    policy: RetryPolicy,
    *,
    local: bool,
    activity_id: str,
    time_left: float | None = None,
    priority_key: int | None = None,
) -> AgentOutput:
    """Schedule the agent as a regular activity, or as a local activity when ``local``.

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
    seconds = request.spec.timeout_seconds
    if time_left is not None:
        seconds = min(seconds, time_left)
    timeout = timedelta(seconds=seconds)
    overall = timedelta(seconds=time_left) if time_left is not None else None
    if local:
        output: AgentOutput = await workflow.execute_local_activity(
            kind,
            request,
            activity_id=activity_id,
            result_type=AgentOutput,
            start_to_close_timeout=timeout,
            schedule_to_close_timeout=overall,
            retry_policy=policy,
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
        activity_id=activity_id,
        task_queue=agent_queue(workflow.info().task_queue, request.agent) if limited else None,
        result_type=AgentOutput,
        start_to_close_timeout=timeout,
        schedule_to_close_timeout=overall,
        heartbeat_timeout=timedelta(seconds=heartbeat),
        retry_policy=policy,
        summary=request.agent,
        priority=Priority(priority_key=priority_key) if priority_key else Priority.default,
    )
    return output


def attempts(err: FailureError, policy: RetryPolicy) -> int:
    """The attempt an agent failed on (the activity reports it in the failure details)."""
    attempt = failure_detail(err, "attempt")
    if isinstance(attempt, int):
        return attempt
    if isinstance(err, ActivityError) and err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return policy.maximum_attempts
    return 1


def failure_detail(err: FailureError, key: str) -> object:
    """A value the ``run_agent`` activity put in its failure's details (a dict), or None."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict):
            return detail.get(key)
    return None


def error_type(err: FailureError) -> str:
    """What kind of failure ended an agent: the ApplicationError's type (the exception class
    or FatalError, AgentOutputError, HookRejected ...), or Timeout."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    if isinstance(cause, TimeoutError):
        return "Timeout"
    return type(cause or err).__name__


def failed_result(
    agent: str, err: FailureError, policy: RetryPolicy, started: datetime,
    deadline: datetime | None,
) -> AgentResult:  # fmt: skip
    """The AgentResult of an agent that failed for good (after Temporal's retries)."""
    failure = err.cause if isinstance(err, ActivityError) else err
    ended = workflow.now()
    out_of_time = deadline_message(deadline, agent, err)
    rejected_by = failure_detail(err, "rejected_by")
    usage = failure_detail(err, "usage")  # an LLM agent stopped by its tool loop or budget
    return AgentResult(
        agent=agent, status="failed", attempt=attempts(err, policy), started_at=started,
        ended_at=ended, duration_ms=(ended - started).total_seconds() * 1000,
        error=out_of_time or str(failure or err),
        error_type="DeadlinePassed" if out_of_time else error_type(err),
        rejected_by=rejected_by if isinstance(rejected_by, str) else None,
        usage=Usage.model_validate(usage) if isinstance(usage, dict) else None,
    )  # fmt: skip


def not_started_result(agent: str, deadline: datetime, now: datetime) -> AgentResult:
    """The event's deadline passed before ``agent`` could start."""
    return AgentResult(
        agent=agent, status="failed", attempt=0, started_at=now, ended_at=now,
        error=f"the event's deadline {deadline.isoformat()} passed before {agent!r} started",
        error_type="DeadlinePassed",
    )  # fmt: skip
