"""Mixed mode: the collaborative phase, then the sequential phase on the merged state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.models.flow import FlowInput, FlowResult, State
    from agentflow.names import MIXED_WORKFLOW
    from agentflow.workflows._approval import ApprovalHandlers
    from agentflow.workflows._event import run_streamed
    from agentflow.workflows._steps import FlowRun


@workflow.defn(name=MIXED_WORKFLOW)
class MixedFlow(ApprovalHandlers):  # the approval Update and query
    @workflow.init
    def __init__(self, flow_input: FlowInput) -> None:
        self.stream = WorkflowStream(flow_input.stream)  # live items (workflows/_stream.py)

    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await run_streamed(self.stream, flow_input, orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    return run.finish(await run.bus.settle(_phases(run)))


async def _phases(run: FlowRun) -> State:
    orch = run.config.orchestration
    merged = await run.fan_out(orch.collaborative_agents, run.input.state)
    return await run.sequence(orch.sequential_agents, merged)
