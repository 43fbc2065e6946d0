"""Orchestration steps shared by the mode workflows: run one agent, a sequence, a fan-out.

Deterministic code only: it decides which agent runs next with which state and leaves every
side effect to the ``run_agent`` activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from agentflow.approval_models import Approval
    from agentflow.models import (
        PRIORITY_KEYS,
        AgentInput,
        AgentResult,
        FlowInput,
        FlowResult,
        State,
    )
    from agentflow.usage import Usage
    from workflows._approval import Approvals
    from workflows._batch import local_batch, run_local_batch
    from workflows._bus import Bus, Delivery
    from workflows._calls import (
        agent_hooks,
        failed_result,
        not_started_result,
        retry_policy,
        run_agent_activity,
    )
    from workflows._child import run_cancelled, run_child_flow
    from workflows._llm_loop import llm_request, run_usage, token_budget
    from workflows._progress import Progress
    from workflows._state import changed_keys, merge_states

if TYPE_CHECKING:
    from workflows._stream import RunStream

# Continues the workflow as new with this input (a loop's checkpoint); never returns.
ContinueAsNew = Callable[[FlowInput], Awaitable[NoReturn]]


async def _continue_flow_as_new(flow_input: FlowInput, stream: RunStream | None) -> NoReturn:
    if stream is not None:  # the next run goes on with the stream (and its watchers)
        flow_input = flow_input.model_copy(update={"stream": await stream.hand_over()})
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

    async def step(self, agent: str, state: State, source: str = "") -> State:
        """Run one agent and record its result; raise StepFailed if it fails for good."""
        output, result = await self.invoke(agent, state, source)
        self.results.append(result)
        self.state = output
        return output

    async def invoke(
        self, agent: str, state: State, source: str, delivery: Delivery | None = None,
        approval: Approval | None = None,
    ) -> tuple[State, AgentResult]:  # fmt: skip
        """Run one agent with Temporal's retries; the caller records the result. ``approval``:
        a person approved this call already (its handler asked)."""
        approval = approval or await self.approvals.before(agent)  # approval = "before"
        spec = self.config.agents[agent]
        policy = retry_policy(self.config.retry_settings(agent), self.config.max_attempts(agent))
        event = self.input.event.model_copy(update={"source_agent": source})
        topic = delivery.topic if delivery else None
        if delivery:
            event.metadata = {**event.metadata, **self.bus.delivery_metadata(delivery)}
        request = AgentInput(
            agent=agent, spec=spec, event=event, state=state, flow=self.config.name,
            llm=self.config.llm, topic=topic, published_by=delivery and delivery.published_by,
            hooks=self.agent_hooks, approval=approval, **llm_request(self.config, agent),
        )  # fmt: skip
        started = workflow.now()
        deadline = self.input.event.deadline
        time_left = None if deadline is None else (deadline - started).total_seconds()
        if deadline is not None and time_left is not None and time_left <= 0:
            raise StepFailed(not_started_result(agent, deadline, started))
        self.running.append(agent)
        self.calls += 1
        activity_id = f"{self.activity_prefix}{self.calls}-{agent}"
        self.progress.started(agent, activity_id)
        try:
            if spec.flow is not None:  # a whole flow: a child workflow (workflows/_child.py)
                output = await run_child_flow(self.config, request, activity_id, time_left)
            else:
                output = await run_agent_activity(
                    request, policy, local=self.config.is_local(agent), activity_id=activity_id,
                    time_left=time_left, priority_key=PRIORITY_KEYS.get(event.priority),
                    budget=token_budget(self.config, self.usage),
                )  # fmt: skip
        except GeneratorExit:
            # The worker is evicting this run (shutdown, full cache, run ended elsewhere):
            # no workflow call works now, and whoever replays the run redoes the step.
            raise
        except BaseException as err:
            self._ended(agent, False, activity_id, error=str(getattr(err, "cause", None) or err))
            if not isinstance(err, FailureError):
                raise
            if run_cancelled(err):  # the run was cancelled: it ends cancelled, not failed
                raise asyncio.CancelledError() from err
            failed = failed_result(agent, err, policy, started, deadline)
            self.usage += failed.usage or Usage()
            raise StepFailed(failed) from err
        self._ended(agent, True, activity_id, attempt=output.attempt)
        if self.config.is_local(agent):
            self.unrecorded_local_ms += (output.ended_at - output.started_at).total_seconds() * 1000
        else:
            self.round_trips += 1
            self.unrecorded_local_ms = 0.0
        if output.approval_required is not None:  # its handler asks a person first
            approval = await self.approvals.asked(agent, output.approval_required, approval)
            return await self.invoke(agent, state, source, delivery, approval)
        result = AgentResult(
            agent=agent,
            status="completed",
            attempt=output.attempt,
            started_at=output.started_at,
            ended_at=output.ended_at,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(state, output.state),
            topic=topic,
            approval=approval,
            usage=output.usage,
        )
        self.usage += output.usage or Usage()
        result = await self.approvals.after(agent, output.state, result)  # approval = "after"
        return self.bus.published(result, activity_id, output.state, delivery), result

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

    def _ended(self, agent: str, succeeded: bool, activity_id: str, **outcome: Any) -> None:
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
