"""Orchestration steps shared by the mode workflows: run one agent, a sequence, a fan-out.

Deterministic code only: it decides which agent runs next with which state and leaves every
side effect to the ``run_agent`` activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from agentflow.models import (
        AgentInput,
        AgentOutput,
        AgentResult,
        FlowInput,
        FlowResult,
        State,
    )

RUN_AGENT = "run_agent"
# A crashed worker's attempt is retried after this long without a heartbeat.
HEARTBEAT_SECONDS = 10.0


class StepFailed(Exception):
    """An agent failed after its retries; carries the failed AgentResult."""

    def __init__(self, result: AgentResult) -> None:
        super().__init__(result.error)
        self.result = result


class FlowRun:
    """One run of a flow: its input, the agent results so far, and how to call an agent."""

    def __init__(self, flow_input: FlowInput) -> None:
        self.input = flow_input
        self.config = flow_input.config
        self.results: list[AgentResult] = []
        self.running: list[str] = []

    async def step(self, agent: str, state: State, source: str = "") -> State:
        """Run one agent and record its result; raise StepFailed if it fails for good."""
        output, result = await self.invoke(agent, state, source)
        self.results.append(result)
        return output

    async def invoke(self, agent: str, state: State, source: str) -> tuple[State, AgentResult]:
        """Run one agent with Temporal's retries; the caller records the result."""
        spec = self.config.agents[agent]
        retry = self.config.retry_settings(agent)
        policy = RetryPolicy(
            initial_interval=timedelta(seconds=retry.initial_interval_seconds),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
            maximum_attempts=self.config.max_attempts(agent),
            non_retryable_error_types=retry.non_retryable_errors,
        )
        event = self.input.event.model_copy(update={"source_agent": source})
        request = AgentInput(
            agent=agent, spec=spec, event=event, state=state,
            flow=self.config.name, llm=self.config.llm,
        )  # fmt: skip
        started = workflow.now()
        self.running.append(agent)
        try:
            output = await run_agent_activity(request, policy, local=self.config.is_local(agent))
        except (ActivityError, ApplicationError, TimeoutError) as err:
            # A failed local activity raises its failure itself, not wrapped in ActivityError.
            failure = err.cause if isinstance(err, ActivityError) else err
            ended = workflow.now()
            raise StepFailed(
                AgentResult(
                    agent=agent,
                    status="failed",
                    attempt=_attempts(err, policy),
                    started_at=started,
                    ended_at=ended,
                    duration_ms=(ended - started).total_seconds() * 1000,
                    error=str(failure or err),
                )
            ) from err
        finally:
            self.running.remove(agent)
        return output.state, AgentResult(
            agent=agent,
            status="completed",
            attempt=output.attempt,
            started_at=output.started_at,
            ended_at=output.ended_at,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(state, output.state),
        )

    async def sequence(self, agents: list[str], state: State) -> State:
        """Each agent gets the previous agent's output state."""
        source = self.input.event.source_agent
        for position, agent in enumerate(agents, start=1):
            try:
                state = await self.step(agent, state, source)
            except StepFailed as failed:
                self.fail(
                    f"agent {agent!r} (step {position} of {len(agents)}) failed: "
                    f"{failed.result.error}",
                    failed.result,
                )
            source = agent
        return state

    async def fan_out(self, agents: list[str], state: State) -> State:
        """All agents get the same state, at most ``max_concurrency`` at once; merge outputs."""
        orch = self.config.orchestration
        gate = asyncio.Semaphore(orch.max_concurrency)

        async def one(agent: str) -> tuple[State | None, AgentResult]:
            async with gate:
                try:
                    return await self.invoke(agent, state, self.input.event.source_agent)
                except StepFailed as failed:
                    return None, failed.result

        # gather keeps config order, so results and the merge do not depend on timing.
        outcomes = await asyncio.gather(*(one(agent) for agent in agents))
        self.results.extend(result for _, result in outcomes)
        failures = [result for output, result in outcomes if output is None]
        if failures and len(failures) / len(agents) > orch.failure_threshold:
            detail = "; ".join(f"{failure.agent}: {failure.error}" for failure in failures)
            self.fail(
                f"{len(failures)} of {len(agents)} collaborative agents failed "
                f"(failure_threshold = {orch.failure_threshold}): {detail}"
            )
        return merge_states(state, [output for output, _ in outcomes if output is not None])

    def finish(self, state: State, **extra: Any) -> FlowResult:
        return FlowResult(
            flow=self.config.name, mode=self.config.mode, state=state,
            results=self.results, **extra,
        )  # fmt: skip

    def fail(self, message: str, failed: AgentResult | None = None, **extra: Any) -> NoReturn:
        """End the run as failed; the details carry the partial result for clients."""
        if failed is not None:
            self.results.append(failed)
        partial = self.finish(self.input.state, **extra)
        partial.status, partial.error = "failed", message
        raise ApplicationError(message, partial, type="FlowFailed", non_retryable=True)


async def run_agent_activity(
    request: AgentInput, policy: RetryPolicy, *, local: bool
) -> AgentOutput:
    """Schedule ``run_agent`` as a regular activity, or as a local activity when ``local``.

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
        result_type=AgentOutput,
        start_to_close_timeout=timeout,
        heartbeat_timeout=timedelta(seconds=heartbeat),
        retry_policy=policy,
        summary=request.agent,
    )
    return output


def changed_keys(before: State, after: State) -> list[str]:
    """Data keys (and ``meta.`` keys) that an agent added, changed or removed."""
    data = _changed(before.data, after.data)
    meta = _changed(before.meta, after.meta)
    return data + [f"meta.{key}" for key in meta]


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = before.keys() | after.keys()
    return sorted(k for k in keys if k not in before or k not in after or before[k] != after[k])


def merge_states(base: State, outputs: list[State]) -> State:
    """Apply each output's changes to ``base`` in config order: a later agent's write wins."""
    merged = base.clone()
    for output in outputs:
        _apply(merged.data, base.data, output.data)
        _apply(merged.meta, base.meta, output.meta)
    return merged


def _apply(target: dict[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    for key in before.keys() - after.keys():
        target.pop(key, None)
    for key, value in after.items():
        if key not in before or before[key] != value:
            target[key] = value


def _attempts(err: FailureError, policy: RetryPolicy) -> int:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
            return int(detail["attempt"])
    if isinstance(err, ActivityError) and err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return policy.maximum_attempts
    return 1
