"""Orchestration steps shared by the mode workflows: run one agent, a sequence, a fan-out.

Deterministic code only: it decides which agent runs next with which state and leaves every
side effect to the ``run_agent`` activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.approval import Approval
    from agentflow.models.flow import AgentResult, FlowInput, FlowResult, State
    from agentflow.models.state import merge_states
    from agentflow.workflows._approval import Approvals
    from agentflow.workflows._batch import local_batch, run_local_batch
    from agentflow.workflows._bus import Bus
    from agentflow.workflows._calls import agent_hooks
    from agentflow.workflows._compensate import Saga
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._invoke import invoke_agent
    from agentflow.workflows._llm_loop import run_usage
    from agentflow.workflows._progress import Progress
    from agentflow.workflows._run import Delivery
    from agentflow.workflows._stream import RunStream


# Continues the workflow as new with this input (a loop's checkpoint); never returns.
ContinueAsNew = Callable[[FlowInput], Awaitable[NoReturn]]


async def _continue_flow_as_new(flow_input: FlowInput, stream: RunStream | None) -> NoReturn:
    if stream is not None:  # the next run goes on with the stream (and its watchers)
        flow_input = flow_input.model_copy(update={"stream": await stream.hand_over()})
    workflow.continue_as_new(flow_input, task_timeout=workflow.info().task_timeout)


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
        continue_as_new: ContinueAsNew | None = None,
        resumed: bool = False,
        stream: RunStream | None = None,
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
        self.continue_as_new = continue_as_new or partial(_continue_flow_as_new, stream=stream)
        self.stream = stream  # the run's live stream (workflows/_stream.py); None: not streamed
        # True when a loop resumes after continue-as-new: its before-event hooks already ran.
        self.resumed = resumed or flow_input.loop is not None
        self.agent_hooks = agent_hooks(self.config)
        self.usage = run_usage(flow_input)  # what its LLM agents used (agentflow/usage.py)
        # The progress query and the UI's current details (workflows/_progress.py).
        self.progress = Progress(self)
        self.bus = Bus(self)  # publish/subscribe deliveries (workflows/_bus.py)
        self.approvals = Approvals(self)  # people in the loop (workflows/_approval.py)
        self.saga = Saga()  # what to undo if the run fails (workflows/_compensate.py)

    async def step(self, agent: str, state: State, source: str = "") -> State:
        """Run one agent and record its result; raise StepFailed if it fails for good."""
        output, result = await self.invoke(agent, state, source)
        self.results.append(result)
        self.state = output
        self.saga.done(self.config, agent, output)
        return output

    async def invoke(
        self, agent: str, state: State, source: str, delivery: Delivery | None = None,
        approval: Approval | None = None,
    ) -> tuple[State, AgentResult]:  # fmt: skip
        """Run one agent with Temporal's retries (workflows/_invoke.py); the caller records the
        result. ``approval``: a person approved this call already (its handler asked)."""
        return await invoke_agent(self, agent, state, source, delivery, approval)

    async def sequence(self, agents: list[str], state: State) -> State:
        """Each agent gets the previous agent's output state. Consecutive local agents run as
        one local activity (workflows/_batch.py), in runs since that patch."""
        source = self.input.event.source_agent
        position, alone = 0, -1  # alone: an agent that asked for an approval in a batch
        while position < len(agents):
            failed: AgentResult | None = None
            batch = local_batch(self, agents[position:]) if position != alone else []
            if batch:
                done = await run_local_batch(self, batch, state, source)
                state, source, failed = done.state, done.source, done.failed
                position += done.count
                alone = position if done.run_alone else alone
            else:
                try:
                    state = await self.step(agents[position], state, source)
                    source, position = agents[position], position + 1
                except StepFailed as err:
                    failed = err.result
            if failed is not None:
                self.fail(
                    f"agent {failed.agent!r} (step {position + 1} of {len(agents)}) failed: "
                    f"{failed.error}",
                    failed,
                )
        return state

    async def fan_out(self, agents: list[str], state: State) -> State:
        """All agents get the same state, at most ``max_concurrency`` at once; merge outputs."""
        orch = self.config.orchestration
        gate = asyncio.Semaphore(orch.max_concurrency)

        async def one(agent: str) -> tuple[State | None, AgentResult]:
            async with gate:
                try:
                    output, result = await self.invoke(agent, state, self.input.event.source_agent)
                    self.saga.done(self.config, agent, output)
                    return output, result
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

    def ended(self, agent: str, succeeded: bool, activity_id: str, **outcome: Any) -> None:
        self.running.remove(agent)
        self.progress.ended(agent, succeeded, activity_id=activity_id, **outcome)

    def finish(self, state: State, **extra: Any) -> FlowResult:
        return FlowResult(
            flow=self.config.name, mode=self.config.mode, state=state,
            results=self.results, usage=self.usage or None, **extra,
        )  # fmt: skip

    def fail(self, message: str, failed: AgentResult | None = None, **extra: Any) -> NoReturn:
        """End the run as failed; the details carry the partial result for clients."""
        if failed is not None:
            self.results.append(failed)
        partial = self.finish(self.state, **extra)
        partial.status, partial.error = "failed", message
        raise ApplicationError(message, partial, type="FlowFailed", non_retryable=True)
