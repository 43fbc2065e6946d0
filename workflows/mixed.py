"""Mixed mode: the collaborative phase, then the sequential phase on the merged state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult
    from workflows._steps import FlowRun


@workflow.defn(name="MixedFlow")
class MixedFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        run = FlowRun(flow_input)
        orch = flow_input.config.orchestration
        merged = await run.fan_out(orch.collaborative_agents, flow_input.state)
        state = await run.sequence(orch.sequential_agents, merged)
        return run.finish(state)
