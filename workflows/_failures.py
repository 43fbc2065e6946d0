"""What an agent's failure says: the attempt it failed on, its error type, whether the event's
deadline ran out, and the failed AgentResult that the run records for it."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from agentflow.models.flow import AgentResult
    from agentflow.models.usage import Usage


def deadline_message(deadline: datetime | None, agent: str, err: BaseException) -> str | None:
    """Why an agent failed when its event's deadline ran out (schedule-to-close)."""
    if deadline is None or not isinstance(err, ActivityError):
        return None
    if err.retry_state != RetryState.TIMEOUT and not isinstance(err.cause, TimeoutError):
        return None
    return f"the event's deadline {deadline.isoformat()} passed while {agent!r} ran"


def timeout_message(
    agent: str, err: BaseException, attempt: int, policy: RetryPolicy
) -> str | None:
    """Why an agent's attempt timed out, in words: a lost heartbeat means the worker running it
    stopped (killed, crashed, cut off from the server); Temporal says only "activity Heartbeat
    timeout" or "activity StartToClose timeout"."""
    if not isinstance(err, ActivityError) or not isinstance(err.cause, TimeoutError):
        return None
    of = f" of {policy.maximum_attempts}" if policy.maximum_attempts else ""
    if err.cause.type == TimeoutType.HEARTBEAT:
        return (
            f"the worker running agent {agent!r} stopped (heartbeat lost) on attempt "
            f"{attempt}{of}: it exited, was killed or lost the server"
        )
    if err.cause.type == TimeoutType.START_TO_CLOSE:
        return (
            f"agent {agent!r} did not finish within its timeout_seconds on attempt {attempt}{of}"
            ": it ran too long, or the worker running it stopped (activity StartToClose timeout)"
        )
    return None


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
    attempt = attempts(err, policy)
    timed_out = timeout_message(agent, err, attempt, policy)
    return AgentResult(
        agent=agent, status="failed", attempt=attempt, started_at=started,
        ended_at=ended, duration_ms=(ended - started).total_seconds() * 1000,
        error=out_of_time or timed_out or str(failure or err),
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


class StepFailed(Exception):
    """An agent failed after its retries; carries the failed AgentResult."""

    def __init__(self, result: AgentResult) -> None:
        super().__init__(result.error)
        self.result = result
