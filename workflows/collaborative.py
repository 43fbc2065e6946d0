"""Collaborative mode: every agent gets the same input in parallel; outputs are merged."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult
    from workflows._event import handle_event
    from workflows._steps import FlowRun


@workflow.defn(name="CollaborativeFlow")
class CollaborativeFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await handle_event(FlowRun(flow_input), orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    agents = run.config.orchestration.collaborative_agents
    state = await run.bus.settle(run.fan_out(agents, run.input.state))
    return run.finish(state)
