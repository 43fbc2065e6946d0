"""Mixed mode: the collaborative phase, then the sequential phase on the merged state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult, State
    from workflows._steps import FlowRun


@workflow.defn(name="MixedFlow")
class MixedFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        run = FlowRun(flow_input)
        return run.finish(await run.bus.settle(self._phases(run, flow_input)))

    @staticmethod
    async def _phases(run: FlowRun, flow_input: FlowInput) -> State:
        orch = flow_input.config.orchestration
        merged = await run.fan_out(orch.collaborative_agents, flow_input.state)
        return await run.sequence(orch.sequential_agents, merged)
