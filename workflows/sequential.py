"""Sequential mode: agents run in order, each on the previous agent's output state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult
    from workflows._event import handle_event
    from workflows._steps import FlowRun


@workflow.defn(name="SequentialFlow")
class SequentialFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await handle_event(FlowRun(flow_input), orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    agents = run.config.orchestration.sequential_agents
    state = await run.bus.settle(run.sequence(agents, run.input.state))
    return run.finish(state)
