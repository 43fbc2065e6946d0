"""How a workflow calls an agent: the ``run_agent`` activity, regular or local, and what its
failures say about attempts.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from agentflow.models import AgentInput, AgentOutput

RUN_AGENT = "run_agent"
# A crashed worker's attempt is retried after this long without a heartbeat.
HEARTBEAT_SECONDS = 10.0


async def run_agent_activity(
    request: AgentInput, policy: RetryPolicy, *, local: bool, activity_id: str
) -> AgentOutput:
    """Schedule ``run_agent`` as a regular activity, or as a local activity when ``local``.

    Every agent is the same activity type; ``activity_id`` names the agent, so replay notices
    a change in which agent runs when (and the UI shows it).

    A local activity runs in the worker that runs the workflow, with no server round trip; its
    result is recorded (as a marker) only when the workflow task completes, so after a crash the
    local steps since the last completed workflow task run again. It has no heartbeat: its
    ``start_to_close`` timeout bounds each attempt, and retries whose backoff exceeds the local
    retry threshold (1 minute) wait on a durable timer instead of in the worker.
    """
    timeout = timedelta(seconds=request.spec.timeout_seconds)
    if local:
        output: AgentOutput = await workflow.execute_local_activity(
            RUN_AGENT,
            request,
            activity_id=activity_id,
            result_type=AgentOutput,
            start_to_close_timeout=timeout,
            retry_policy=policy,
            summary=request.agent,
        )
        return output
    heartbeat = min(HEARTBEAT_SECONDS, request.spec.timeout_seconds)
    output = await workflow.execute_activity(
        RUN_AGENT,
        request,
        activity_id=activity_id,
        result_type=AgentOutput,
        start_to_close_timeout=timeout,
        heartbeat_timeout=timedelta(seconds=heartbeat),
        retry_policy=policy,
        summary=request.agent,
    )
    return output


def attempts(err: FailureError, policy: RetryPolicy) -> int:
    """The attempt an agent failed on (the activity reports it in the failure details)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
            return int(detail["attempt"])
    if isinstance(err, ActivityError) and err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return policy.maximum_attempts
    return 1
