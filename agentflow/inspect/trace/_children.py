"""Trace lines of flows inside flows: a flow agent runs its flow as a child workflow of one of
the mode workflows. Its started line names the child (read.py splices the child's
own lines in after it, one level deeper); its end is the agent's completed or failed line."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from agentflow.inspect.trace._entry import Action, event_time, parse_activity_id
from agentflow.inspect.trace._steps import Batch, DecoderBase, Step
from agentflow.models.flow import AgentOutput, FlowInput, FlowResult
from agentflow.names import MODE_WORKFLOWS

# The mode workflows' types: a child workflow of one of them is a flow agent's nested flow.
FLOW_WORKFLOW_TYPES = frozenset(MODE_WORKFLOWS.values())

# How a flow agent's child workflow ended: the event's attributes field.
CHILD_ENDS: dict[int, str] = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        "child_workflow_execution_completed_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
        "child_workflow_execution_failed_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
        "child_workflow_execution_timed_out_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED:
        "child_workflow_execution_canceled_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
        "child_workflow_execution_terminated_event_attributes",
}  # fmt: skip


class ChildFlows(DecoderBase):
    """Reads the child workflow events of flow agents."""

    async def child_flow_started(self, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        if attrs.workflow_type.name not in FLOW_WORKFLOW_TYPES:
            return
        [flow_input] = await self.converter.decode(attrs.input.payloads, [FlowInput])
        _, agent = parse_activity_id(attrs.workflow_id.rpartition("/")[2])
        batch = attrs.workflow_task_completed_event_id
        step = Step(agent, flow_input.event.id, batch, flow_input.state)
        step.started = event_time(event)
        self.flow_event(step.event_id)
        self.batches.setdefault(batch, Batch(flow_input.state))
        self.children[event.event_id] = step
        self.line(event, "started", agent, attempt=1, child_workflow_id=attrs.workflow_id,
                  detail=f"flow {flow_input.config.name} ({flow_input.config.mode}) as "
                         f"{attrs.workflow_id}", **step.tags)  # fmt: skip
        self.flow_lines[event.event_id] = self.entries[-1]

    def child_flow_run(self, event: HistoryEvent) -> None:
        """The run a flow agent's child got: its started line names it."""
        attrs = event.child_workflow_execution_started_event_attributes
        if (line := self.flow_lines.get(attrs.initiated_event_id)) is not None:
            line.child_run_id = attrs.workflow_execution.run_id

    async def child_flow_ended(self, event: HistoryEvent) -> None:
        kind = event.event_type
        attrs = getattr(event, CHILD_ENDS[kind])
        if (step := self.children.pop(attrs.initiated_event_id, None)) is None:
            return
        ended = event_time(event)
        if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            [result] = await self.converter.decode(attrs.result.payloads, [FlowResult])
            since = step.started or ended
            self.agent_done(event, step, AgentOutput(state=result.state, started_at=since,
                                                     ended_at=ended))  # fmt: skip
            return
        duration = (ended - (step.started or ended)).total_seconds() * 1000
        if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
            self.step_failed(event, step, "failed", attrs.failure, 1, duration)
            return
        ends: dict[int, Action] = {
            EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
            EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "canceled",
        }
        action = ends.get(kind, "terminated")
        self.line(event, action, step.agent, attempt=1, duration_ms=duration, **step.tags)
