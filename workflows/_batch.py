"""Consecutive local agents of a sequence, run as one local activity (``run_local_agents``).

Why: every local activity costs a workflow activation, a local-activity dispatch and a
completion in the worker (about 2-3 ms of SDK work each, bench/RESULTS.md "W6"), while the
agents themselves are often far cheaper. A batch pays that once for its agents. Nothing else
changes: each agent keeps its own hooks, result, attempt and activity id; the first agent's
failure fails the activity, so Temporal retries it with that agent's retry policy; a later
agent's failure comes back with the results so far, and is retried (after the backoff, on a
durable timer, workflows/_batch_retries.py) or routed to ``[error_routing]`` exactly as if it
had run on its own. As with any local work, a batch's results are recorded when the workflow
task completes; a batch takes no new agent after ``BATCH_BUDGET_SECONDS``, so the worker's
workflow task heartbeat can record long work as before.

Only agents that need nothing but the worker's own call join a batch: local ones without
``approval``, ``flow``, ``tools`` or ``rate_limit``, in events without a deadline. Runs from
before the ``local-agent-batch`` patch keep calling each agent on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import takewhile

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.models.batch import BatchCall, BatchFailure, BatchInput, BatchOutput
    from agentflow.models.flow import AgentOutput, AgentResult, State
    from agentflow.models.state import changed_keys
    from agentflow.names import LOCAL_BATCH
    from agentflow.workflows._batch_retries import batch_policy, retry_delay
    from agentflow.workflows._failures import failed_result, failure_detail
    from agentflow.workflows._run import Run


BATCH_PATCH = "local-agent-batch"
BATCH_BUDGET_SECONDS = 1.0
# Spec fields that make an agent more than a call in this worker (approvals wait for a person,
# a nested flow is a child workflow, tools, rate limits and memory have their own activities).
# An agent with ``compensate`` runs alone: its compensation gets the state it produced.
NOT_BATCHED = ("approval", "flow", "tools", "rate_limit", "memory_enabled", "compensate")


def joins_batch(config: FlowConfig, agent: str) -> bool:
    """Whether ``agent`` may run inside a batch of local agents: a local handler agent.

    Not an LLM agent: its model may ask for tools (MCP servers need no ``tools`` key), which
    run as activities of their own between its model steps (workflows/_llm_loop.py).
    """
    spec = config.agents[agent]
    if not config.is_local(agent) or config.is_llm_agent(agent):
        return False
    return not any(getattr(spec, field) for field in NOT_BATCHED)


def local_batch(run: Run, agents: list[str]) -> list[str]:
    """The agents at the head of ``agents`` to run as one batch (two or more), else none."""
    if run.input.event.deadline is not None:  # each agent gets the time left: one at a time
        return []
    batch = list(takewhile(lambda agent: joins_batch(run.config, agent), agents))
    # patched() only where a batch would run: other runs keep their commands and histories.
    return batch if len(batch) > 1 and workflow.patched(BATCH_PATCH) else []


@dataclass
class BatchDone:
    """Where a batch left the sequence: the state passed on, the last agent that ran, how many
    agents completed, and the failure that ended it (or that the next agent must run alone)."""

    state: State
    source: str
    count: int = 0
    failed: AgentResult | None = None
    run_alone: bool = False


async def run_local_batch(run: Run, agents: list[str], state: State, source: str) -> BatchDone:
    """Run ``agents`` in batches until all completed, one failed for good, or one asks for an
    approval; record each completed agent as ``FlowRun.step`` would."""
    done = BatchDone(state, source)
    first_attempt = 1
    while done.count < len(agents) and done.failed is None and not done.run_alone:
        remaining = agents[done.count :]
        calls = [
            BatchCall(agent=agent, spec=run.config.agents[agent],
                      activity_id=f"{run.activity_prefix}{run.calls + index}-{agent}")
            for index, agent in enumerate(remaining, start=1)
        ]  # fmt: skip
        started = workflow.now()
        policy = batch_policy(run.config, remaining[0], first_attempt)
        try:
            output = await _schedule(run, calls, done, policy, first_attempt)
        except FailureError as err:
            ended(run, remaining[0], calls[0].activity_id, False, error=str(err.cause or err))
            failed = failed_result(remaining[0], err, policy, started, None)
            if failure_detail(err, "attempt") is None:  # the policy counted from first_attempt
                failed.attempt += first_attempt - 1
            done.failed = failed
            break
        for agent, activity_id, out in zip(output.agents, output.activity_ids, output.outputs,
                                           strict=True):  # fmt: skip
            done.state = _record(run, agent, activity_id, done.state, out)
            done.source, done.count = agent, done.count + 1
        done.run_alone = output.run_alone
        first_attempt = 1
        if output.failure is not None:
            delay = retry_delay(run.config, output.failure)
            if delay is None:
                done.failed = _failed(run, output.failure)
            else:
                await workflow.sleep(timedelta(seconds=delay))
                first_attempt = output.failure.attempt + 1
    return done


async def _schedule(
    run: Run, calls: list[BatchCall], done: BatchDone, policy: RetryPolicy, first_attempt: int
) -> BatchOutput:
    request = BatchInput(
        calls=calls, event=run.input.event.model_copy(update={"source_agent": done.source}),
        state=done.state, flow=run.config.name, llm=run.config.llm, hooks=run.agent_hooks,
        first_attempt=first_attempt, budget_seconds=BATCH_BUDGET_SECONDS,
    )  # fmt: skip
    # Each agent's own timeout bounds its call inside the batch; this bounds the batch.
    seconds = sum(call.spec.timeout_seconds for call in calls)
    names = [call.agent for call in calls]
    output: BatchOutput = await workflow.execute_local_activity(
        LOCAL_BATCH, request, activity_id=calls[0].activity_id, result_type=BatchOutput,
        start_to_close_timeout=timedelta(seconds=seconds), retry_policy=policy,
        summary=f"{names[0]} … {names[-1]} ({len(names)} local agents)" if len(names) > 1
        else names[0],
    )  # fmt: skip
    return output


def _record(run: Run, agent: str, activity_id: str, before: State, out: AgentOutput) -> State:
    """A batch agent's result, recorded as ``FlowRun.step`` records a local agent's."""
    run.calls += 1
    ended(run, agent, activity_id, True, attempt=out.attempt)
    duration_ms = (out.ended_at - out.started_at).total_seconds() * 1000
    run.unrecorded_local_ms += duration_ms
    result = AgentResult(
        agent=agent, status="completed", attempt=out.attempt, started_at=out.started_at,
        ended_at=out.ended_at, duration_ms=duration_ms,
        changed_keys=changed_keys(before, out.state), cached=out.cached, saved=out.saved,
    )  # fmt: skip
    state = run.bus.published(result, activity_id, out.state, None)
    run.results.append(result)
    run.state = state
    return state


def _failed(run: Run, failure: BatchFailure) -> AgentResult:
    """The AgentResult of a later batch agent that failed for good."""
    now = workflow.now()
    activity_id = f"{run.activity_prefix}{run.calls + 1}-{failure.agent}"
    ended(run, failure.agent, activity_id, False, error=failure.message)
    return AgentResult(
        agent=failure.agent, status="failed", attempt=failure.attempt, started_at=now,
        ended_at=now, error=failure.message, error_type=failure.type,
        rejected_by=failure.rejected_by,
    )  # fmt: skip


def ended(run: Run, agent: str, activity_id: str, succeeded: bool, **outcome: object) -> None:
    """Progress (the UI's details, the run's stream) sees a batch agent start and end."""
    run.running.append(agent)
    run.progress.started(agent, activity_id)
    run.ended(agent, succeeded, activity_id, **outcome)
