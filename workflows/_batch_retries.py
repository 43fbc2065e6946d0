"""Retries of a batch's agents (workflows/_batch.py). Temporal retries the batch's activity
with its first agent's policy, counted from the attempt that agent is on; a later agent's
failure comes back as a result, and the workflow waits its backoff on a durable timer.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.batch import BatchFailure
    from agentflow.workflows._calls import retry_policy


def batch_policy(config: FlowConfig, agent: str, first_attempt: int) -> RetryPolicy:
    """``agent``'s retry policy, for the attempts it has left after ``first_attempt`` - 1."""
    settings = config.retry_settings(agent)
    maximum = config.max_attempts(agent)
    policy = retry_policy(settings, maximum)
    if first_attempt == 1:
        return policy
    spent = first_attempt - 1
    interval = min(settings.initial_interval_seconds * settings.backoff_coefficient**spent,
                   settings.maximum_interval_seconds)  # fmt: skip
    return dataclasses.replace(
        policy, maximum_attempts=max(1, maximum - spent) if maximum else 0,
        initial_interval=timedelta(seconds=interval),
    )  # fmt: skip


def retry_delay(config: FlowConfig, failure: BatchFailure) -> float | None:
    """The backoff before ``failure``'s agent tries again; None when it has failed for good."""
    settings = config.retry_settings(failure.agent)
    maximum = config.max_attempts(failure.agent)
    if failure.non_retryable or failure.type in settings.non_retryable_errors:
        return None
    if maximum and failure.attempt >= maximum:
        return None
    delay = settings.initial_interval_seconds * settings.backoff_coefficient ** (
        failure.attempt - 1
    )
    return min(delay, settings.maximum_interval_seconds)
