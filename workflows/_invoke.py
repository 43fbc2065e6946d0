"""One agent call of a flow run (``FlowRun.invoke``): the request it sends, the activity or
child flow that runs it, the failure or AgentResult it leaves, and the approvals and
publications around it. Deterministic code only, like the rest of workflows/.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.approval import Approval
    from agentflow.models.flow import PRIORITY_KEYS, AgentInput, AgentOutput, AgentResult, State
    from agentflow.models.state import changed_keys
    from agentflow.models.usage import Usage
    from agentflow.workflows._calls import AgentCall, retry_policy, run_agent_activity
    from agentflow.workflows._child import run_cancelled, run_child_flow
    from agentflow.workflows._failures import StepFailed, failed_result, not_started_result
    from agentflow.workflows._llm_loop import llm_request, token_budget
    from agentflow.workflows._memory import recall, remember
    from agentflow.workflows._run import Delivery, Run


async def invoke_agent(
    run: Run, agent: str, state: State, source: str, delivery: Delivery | None,
    approval: Approval | None,
) -> tuple[State, AgentResult]:  # fmt: skip
    """Run one agent with Temporal's retries; the caller records the result."""
    approval = approval or await run.approvals.before(agent)  # approval = "before"
    config = run.config
    policy = retry_policy(config.retry_settings(agent), config.max_attempts(agent))
    request = _request(run, agent, state, source, delivery, approval)
    started = workflow.now()
    deadline = run.input.event.deadline
    time_left = None if deadline is None else (deadline - started).total_seconds()
    if deadline is not None and time_left is not None and time_left <= 0:
        raise StepFailed(not_started_result(agent, deadline, started))
    run.running.append(agent)
    run.calls += 1
    activity_id = f"{run.activity_prefix}{run.calls}-{agent}"
    run.progress.started(agent, activity_id)
    try:
        if request.spec.flow is not None:  # a whole flow: a child workflow (workflows/_child.py)
            output = await run_child_flow(config, request, activity_id, time_left)
        else:
            call = AgentCall(policy, local=config.is_local(agent), activity_id=activity_id,
                             time_left=time_left,
                             priority_key=PRIORITY_KEYS.get(request.event.priority),
                             tokens_to=run.stream.publish_tokens if run.stream else None,
                             )  # fmt: skip
            if request.spec.memory_enabled:  # recall, run, remember (workflows/_memory.py)
                request.memory = await recall(request, policy, activity_id)
            output = await run_agent_activity(request, call, token_budget(config, run.usage))
            if request.spec.memory_enabled and output.approval_required is None:
                await remember(request, output.state, policy, activity_id)
    except GeneratorExit:
        # The worker is evicting this run (shutdown, full cache, run ended elsewhere):
        # no workflow call works now, and whoever replays the run redoes the step.
        raise
    except BaseException as err:
        run.ended(agent, False, activity_id, error=str(getattr(err, "cause", None) or err))
        if not isinstance(err, FailureError):
            raise
        if run_cancelled(err):  # the run was cancelled: it ends cancelled, not failed
            raise asyncio.CancelledError() from err
        failed = failed_result(agent, err, policy, started, deadline)
        run.usage += failed.usage or Usage()
        raise StepFailed(failed) from err
    run.ended(agent, True, activity_id, attempt=output.attempt)
    _count_work(run, agent, output)
    if output.approval_required is not None:  # its handler asks a person first
        approval = await run.approvals.asked(agent, output.approval_required, approval)
        return await run.invoke(agent, state, source, delivery, approval)
    result = _completed(request, state, output)
    run.usage += output.usage or Usage()
    result = await run.approvals.after(agent, output.state, result)  # approval = "after"
    return run.bus.published(result, activity_id, output.state, delivery), result


def _request(
    run: Run, agent: str, state: State, source: str, delivery: Delivery | None,
    approval: Approval | None,
) -> AgentInput:  # fmt: skip
    """What the agent's activity gets: the event as this agent sees it, and the run's state."""
    config = run.config
    event = run.input.event.model_copy(update={"source_agent": source})
    if delivery:
        event.metadata = {**event.metadata, **run.bus.delivery_metadata(delivery)}
    return AgentInput(
        agent=agent, spec=config.agents[agent], event=event, state=state, flow=config.name,
        llm=config.llm, topic=delivery.topic if delivery else None,
        published_by=delivery and delivery.published_by, hooks=run.agent_hooks,
        approval=approval, **llm_request(config, agent),
    )  # fmt: skip


def _count_work(run: Run, agent: str, output: AgentOutput) -> None:
    """A regular agent ended a workflow task; a local one adds to the work not yet recorded."""
    if run.config.is_local(agent):
        run.unrecorded_local_ms += (output.ended_at - output.started_at).total_seconds() * 1000
    else:
        run.round_trips += 1
        run.unrecorded_local_ms = 0.0


def _completed(request: AgentInput, state: State, output: AgentOutput) -> AgentResult:
    """The AgentResult of an agent that completed (``state``: what it was given)."""
    return AgentResult(
        agent=request.agent,
        status="completed",
        attempt=output.attempt,
        started_at=output.started_at,
        ended_at=output.ended_at,
        duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
        changed_keys=changed_keys(state, output.state),
        topic=request.topic,
        approval=request.approval,
        usage=output.usage,
        cached=output.cached,  # a result cache hit (activities/cache.py): it did not run
        saved=output.saved,
    )
