"""The sequential workflow as it was before streaming (no WorkflowStream, nothing published):
the "streaming off" side of W8 (bench/streaming.py). Bench only; never on a real worker."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.flow import FlowInput, FlowResult
    from agentflow.workflows import sequential
    from agentflow.workflows._event import handle_event
    from agentflow.workflows._steps import FlowRun


@workflow.defn(name="SequentialFlow")
class UnstreamedSequentialFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await handle_event(FlowRun(flow_input), sequential.orchestrate)
