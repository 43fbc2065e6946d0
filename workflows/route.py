"""Route mode: run the event's target agent (else the first of ``[[orchestration.routes]]``
that holds, decided by the ``decide_route`` activity), then follow ``meta["route"]`` hand-offs."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.models.bus import EXPRESSION_FAILED
    from agentflow.models.flow import AgentResult, FlowInput, FlowResult, State
    from agentflow.models.routes import ROUTES_PATCH, ROUTES_STEP, RouteDecision, route_request
    from agentflow.names import ROUTE_ACTIVITY, ROUTE_WORKFLOW
    from agentflow.workflows._approval import ApprovalHandlers
    from agentflow.workflows._event import run_streamed
    from agentflow.workflows._failures import StepFailed
    from agentflow.workflows._steps import FlowRun


@workflow.defn(name=ROUTE_WORKFLOW)
class RouteFlow(ApprovalHandlers):  # the approval Update and query
    @workflow.init
    def __init__(self, flow_input: FlowInput) -> None:
        self.stream = WorkflowStream(flow_input.stream)  # live items (workflows/_stream.py)

    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await run_streamed(self.stream, flow_input, orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    state, path = await run.bus.settle(_hops(run))
    return run.finish(state, path=path)


async def _hops(run: FlowRun) -> tuple[State, list[str]]:
    config = run.config
    agent = await first_agent(run)
    source = run.input.event.source_agent
    state = run.input.state
    path: list[str] = []
    while True:
        if agent not in config.agents or not config.agents[agent].enabled:
            known = ", ".join(config.enabled_agents())
            where = f"agent {source!r} routed" if path else "the event is routed"
            run.fail(f"{where} to unknown agent {agent!r}; enabled agents: {known}", path=path)
        if len(path) > config.orchestration.max_hops:
            run.fail(hop_limit_message(path, config.orchestration.max_hops), path=path)
        path.append(agent)
        try:
            state = await run.step(agent, state, source)
        except StepFailed as failed:
            run.fail(f"agent {agent!r} (hop {len(path)}) failed: {failed.result.error}",
                     failed.result, path=path)  # fmt: skip
        next_agent = state.meta.pop("route", "")
        if not next_agent:
            return state, path
        run.progress.note("handoff", agent, to=next_agent)
        source, agent = agent, next_agent


async def first_agent(run: FlowRun) -> str:
    """The event's target, else the first of ``[[orchestration.routes]]`` that holds (decided
    by a local activity: CEL never runs in workflow code), else ``entry_agent``."""
    flow_input = run.input
    routes = flow_input.config.orchestration.routes
    if routes and not flow_input.event.target_agent and workflow.patched(ROUTES_PATCH):
        decision: RouteDecision = await workflow.execute_local_activity(
            ROUTE_ACTIVITY, route_request(flow_input), result_type=RouteDecision,
            start_to_close_timeout=timedelta(seconds=30), summary="routes",
        )  # fmt: skip
        if decision.error is not None:
            failed = AgentResult(agent=ROUTES_STEP, status="failed", error=decision.error,
                                 error_type=EXPRESSION_FAILED)  # fmt: skip
            run.fail(f"no route taken: {decision.error}", failed, path=[])
        if decision.agent is not None:
            run.progress.note("routed", ROUTES_STEP, to=decision.agent, route=decision.index)
            return decision.agent
    return entry_agent(flow_input)


def entry_agent(flow_input: FlowInput) -> str:
    """The event's target, else ``entry_agent``, else the first enabled agent."""
    config = flow_input.config
    return (
        flow_input.event.target_agent
        or config.orchestration.entry_agent
        or config.enabled_agents()[0]
    )


def hop_limit_message(path: list[str], max_hops: int) -> str:
    shown = " → ".join(path)
    if len(set(path)) < len(path):
        return f"loop detected: {shown} → … (max_hops = {max_hops})"
    return f"hop limit reached: {shown} (max_hops = {max_hops})"
