"""Sequential mode: agents run in order, each on the previous agent's output state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.models.flow import FlowInput, FlowResult
    from agentflow.names import SEQUENTIAL_WORKFLOW
    from agentflow.workflows._approval import ApprovalHandlers
    from agentflow.workflows._event import run_streamed
    from agentflow.workflows._steps import FlowRun


@workflow.defn(name=SEQUENTIAL_WORKFLOW)
class SequentialFlow(ApprovalHandlers):  # the approval Update and query
    @workflow.init
    def __init__(self, flow_input: FlowInput) -> None:
        self.stream = WorkflowStream(flow_input.stream)  # live items (workflows/_stream.py)

    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await run_streamed(self.stream, flow_input, orchestrate)


async def orchestrate(run: FlowRun) -> FlowResult:
    agents = run.config.orchestration.sequential_agents
    state = await run.bus.settle(run.sequence(agents, run.input.state))
    return run.finish(state)
