"""The sequential workflow as it was before streaming (no WorkflowStream, nothing published):
the "streaming off" side of W8 (bench/streaming.py). Bench only; never on a real worker."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models import FlowInput, FlowResult
    from workflows import sequential
    from workflows._event import handle_event
    from workflows._steps import FlowRun


@workflow.defn(name="SequentialFlow")
class UnstreamedSequentialFlow:
    @workflow.run
    async def run(self, flow_input: FlowInput) -> FlowResult:
        return await handle_event(FlowRun(flow_input), sequential.orchestrate)
