"""How a workflow calls an agent: the ``run_agent`` activity, regular or local, and what its
failures say about attempts.
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
    from agentflow.config import FlowConfig, RetrySettings
    from agentflow.models import AgentHooks, AgentInput, AgentOutput, AgentResult

RUN_AGENT = "run_agent"
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
) -> AgentOutput:
    """Schedule ``run_agent`` as a regular activity, or as a local activity when ``local``.

    Every agent is the same activity type; ``activity_id`` names the agent, so replay notices
    a change in which agent runs when (and the UI shows it).

    A local activity runs in the worker that runs the workflow, with no server round trip; its
    result is recorded (as a marker) only when the workflow task completes, so after a crash the
    local steps since the last completed workflow task run again. It has no heartbeat: its
    ``start_to_close`` timeout bounds each attempt, and retries whose backoff exceeds the local
    retry threshold (1 minute) wait on a durable timer instead of in the worker.

    ``time_left`` (an event's deadline) bounds every attempt and all retries together;
    ``priority_key`` orders the activity task among others waiting on the task queue (local
    activities never wait on a queue, so they ignore it).
    """
    seconds = request.spec.timeout_seconds
    if time_left is not None:
        seconds = min(seconds, time_left)
    timeout = timedelta(seconds=seconds)
    overall = timedelta(seconds=time_left) if time_left is not None else None
    if local:
        output: AgentOutput = await workflow.execute_local_activity(
            RUN_AGENT,
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
    output = await workflow.execute_activity(
        RUN_AGENT,
        request,
        activity_id=activity_id,
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
    return AgentResult(
        agent=agent, status="failed", attempt=attempts(err, policy), started_at=started,
        ended_at=ended, duration_ms=(ended - started).total_seconds() * 1000,
        error=out_of_time or str(failure or err),
        error_type="DeadlinePassed" if out_of_time else error_type(err),
        rejected_by=rejected_by if isinstance(rejected_by, str) else None,
    )  # fmt: skip


def not_started_result(agent: str, deadline: datetime, now: datetime) -> AgentResult:
    """The event's deadline passed before ``agent`` could start."""
    return AgentResult(
        agent=agent, status="failed", attempt=0, started_at=now, ended_at=now,
        error=f"the event's deadline {deadline.isoformat()} passed before {agent!r} started",
        error_type="DeadlinePassed",
    )  # fmt: skip
