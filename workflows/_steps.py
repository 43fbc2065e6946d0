"""Orchestration steps shared by the mode workflows: run one agent, a sequence, a fan-out.

Deterministic code only: it decides which agent runs next with which state and leaves every
side effect to the ``run_agent`` activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from agentflow.models import (
        PRIORITY_KEYS,
        AgentInput,
        AgentResult,
        FlowInput,
        FlowResult,
        State,
    )
    from workflows._bus import Bus, Delivery
    from workflows._calls import (
        agent_hooks,
        failed_result,
        not_started_result,
        retry_policy,
        run_agent_activity,
    )
    from workflows._progress import Progress
    from workflows._state import changed_keys, merge_states

# Continues the workflow as new with this input (a loop's checkpoint); never returns.
ContinueAsNew = Callable[[FlowInput], Awaitable[NoReturn]]


async def _continue_flow_as_new(flow_input: FlowInput) -> NoReturn:
    workflow.continue_as_new(flow_input, task_timeout=workflow.info().task_timeout)


class StepFailed(Exception):
    """An agent failed after its retries; carries the failed AgentResult."""

    def __init__(self, result: AgentResult) -> None:
        super().__init__(result.error)
        self.result = result


class FlowRun:
    """One run of a flow (one event): its input, the agent results so far, and how to call an
    agent.

    A session runs many events in one workflow: it gives each its ``activity_prefix`` (activity
    ids stay unique in the run) and its own way to ``continue_as_new`` (carrying the queue).
    """

    def __init__(
        self,
        flow_input: FlowInput,
        *,
        activity_prefix: str = "",
        continue_as_new: ContinueAsNew = _continue_flow_as_new,
        resumed: bool = False,
    ) -> None:
        self.input = flow_input
        self.config = flow_input.config
        self.results: list[AgentResult] = []
        self.running: list[str] = []
        self.calls = 0
        self.state = flow_input.state  # the last state an agent passed on, for failures
        self.activity_prefix = activity_prefix
        # Local work not yet recorded: local agents since the last regular one, which ended a
        # workflow task (a session checkpoints when this grows; see workflows/session.py).
        self.round_trips = 0
        self.unrecorded_local_ms = 0.0
        self.continue_as_new = continue_as_new
        # True when a loop resumes after continue-as-new: its before-event hooks already ran.
        self.resumed = resumed or flow_input.loop is not None
        self.agent_hooks = agent_hooks(self.config)
        # The progress query and the UI's current details (workflows/_progress.py).
        self.progress = Progress(self)
        self.bus = Bus(self)  # publish/subscribe deliveries (workflows/_bus.py)

    async def step(self, agent: str, state: State, source: str = "") -> State:
        """Run one agent and record its result; raise StepFailed if it fails for good."""
        output, result = await self.invoke(agent, state, source)
        self.results.append(result)
        self.state = output
        return output

    async def invoke(
        self, agent: str, state: State, source: str, delivery: Delivery | None = None
    ) -> tuple[State, AgentResult]:
        """Run one agent with Temporal's retries; the caller records the result."""
        spec = self.config.agents[agent]
        policy = retry_policy(self.config.retry_settings(agent), self.config.max_attempts(agent))
        event = self.input.event.model_copy(update={"source_agent": source})
        topic = delivery.topic if delivery else None
        if delivery:
            event.metadata = {**event.metadata, **self.bus.delivery_metadata(delivery)}
        request = AgentInput(
            agent=agent, spec=spec, event=event, state=state, flow=self.config.name,
            llm=self.config.llm, topic=topic, published_by=delivery and delivery.published_by,
            hooks=self.agent_hooks,
        )  # fmt: skip
        started = workflow.now()
        deadline = self.input.event.deadline
        time_left = None if deadline is None else (deadline - started).total_seconds()
        if deadline is not None and time_left is not None and time_left <= 0:
            raise StepFailed(not_started_result(agent, deadline, started))
        self.running.append(agent)
        self.calls += 1
        activity_id = f"{self.activity_prefix}{self.calls}-{agent}"
        self.progress.started(agent)
        try:
            output = await run_agent_activity(
                request, policy, local=self.config.is_local(agent), activity_id=activity_id,
                time_left=time_left, priority_key=PRIORITY_KEYS.get(event.priority),
            )  # fmt: skip
        except GeneratorExit:
            # The worker is evicting this run (shutdown, full cache, run ended elsewhere):
            # no workflow call works now, and whoever replays the run redoes the step.
            raise
        except BaseException as err:
            self._ended(agent, succeeded=False)
            if not isinstance(err, FailureError):
                raise
            raise StepFailed(failed_result(agent, err, policy, started, deadline)) from err
        self._ended(agent, succeeded=True)
        if self.config.is_local(agent):
            self.unrecorded_local_ms += (output.ended_at - output.started_at).total_seconds() * 1000
        else:
            self.round_trips += 1
            self.unrecorded_local_ms = 0.0
        result = AgentResult(
            agent=agent,
            status="completed",
            attempt=output.attempt,
            started_at=output.started_at,
            ended_at=output.ended_at,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(state, output.state),
            topic=topic,
        )
        return self.bus.published(result, activity_id, output.state, delivery), result

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

    def _ended(self, agent: str, succeeded: bool) -> None:
        self.running.remove(agent)
        self.progress.ended(agent, succeeded)

    def finish(self, state: State, **extra: Any) -> FlowResult:
        return FlowResult(
            flow=self.config.name, mode=self.config.mode, state=state,
            results=self.results, **extra,
        )  # fmt: skip

    def fail(self, message: str, failed: AgentResult | None = None, **extra: Any) -> NoReturn:
        """End the run as failed; the details carry the partial result for clients."""
        if failed is not None:
            self.results.append(failed)
        partial = self.finish(self.state, **extra)
        partial.status, partial.error = "failed", message
        raise ApplicationError(message, partial, type="FlowFailed", non_retryable=True)
