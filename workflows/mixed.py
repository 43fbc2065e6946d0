"""Mixed mode: the collaborative phase, then the sequential phase on the merged state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult, State
    from workflows._event import handle_event
    from workflows._steps import FlowRun


@workflow.defn(name="MixedFlow")
class MixedFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await handle_event(FlowRun(flow_input), orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    return run.finish(await run.bus.settle(_phases(run)))


async def _phases(run: FlowRun) -> State:
    orch = run.config.orchestration
    merged = await run.fan_out(orch.collaborative_agents, run.input.state)
    return await run.sequence(orch.sequential_agents, merged)
