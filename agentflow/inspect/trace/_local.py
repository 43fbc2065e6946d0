"""Trace lines of local activities: local agents (``local = true``), local event hooks and
batches of local agents (workflows/_batch.py).

They leave no scheduled/started/completed events: the SDK records each result as a
``core_local_activity`` marker when the workflow task completes (its ``data`` detail names the
activity id, type and attempt; ``result`` holds the output, the marker's ``failure`` the
error). They get a ``completed`` or ``failed`` line from it, timed when the marker was
recorded; their input is not in history, so their state before is the flow's last known
state."""

from __future__ import annotations

from datetime import datetime

from temporalio.api.history.v1 import HistoryEvent

from agentflow.inspect.trace._entry import (
    HOOKS,
    LOCAL_ACTIVITY_MARKER,
    Action,
    is_timeout,
    parse_activity_id,
    proto_time,
)
from agentflow.inspect.trace._steps import Batch, DecoderBase, FlowEvent, Step, error_routing
from agentflow.models.batch import BatchOutput
from agentflow.models.flow import AgentOutput, HookOutput, State
from agentflow.names import LOCAL_BATCH, RUN_HOOKS, is_agent_call

# What an [error_routing] handler's input holds besides the failed event's state.
ROUTING_KEYS = ("original_event", "failed_agent", "error_message", "error_type",
                "exception_type", "attempts", "state")  # fmt: skip


class LocalSteps(DecoderBase):
    """Reads the markers of local activities."""

    async def local_step(self, event: HistoryEvent) -> None:
        """A local activity's marker: its completion or failure (its input is not recorded)."""
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
            return
        try:
            [info] = await self.converter.decode(attrs.details["data"].payloads, [dict])
        except Exception:
            return  # a marker from an SDK that writes it differently: nothing to show
        kind, activity_id = info.get("activity_type"), str(info.get("activity_id", ""))
        if kind == LOCAL_BATCH:
            await self.batch_steps(event, activity_id, int(info.get("attempt") or 1))
            return
        if not isinstance(kind, str) or not (is_agent_call(kind) or kind == RUN_HOOKS):
            return
        seq, name = parse_activity_id(activity_id)
        event_id = self.event_of(seq)
        flow_event = self.flow_event(event_id)
        attempt = int(info.get("attempt") or 1)
        scheduled_at = proto_time(info.get("original_schedule_time"))
        if kind == RUN_HOOKS:
            step = Step(HOOKS, event_id, self.new_local_batch(event, flow_event), flow_event.state,
                        hook=name.removeprefix(f"{HOOKS}-"), activity_id=activity_id)  # fmt: skip
        else:
            batch = self.local_batch_of(event, scheduled_at, flow_event)
            step = Step(name, event_id, batch, None, activity_id=activity_id)
        if attrs.HasField("failure"):
            action: Action = "timed out" if is_timeout(attrs.failure) else "failed"
            self.step_failed(event, step, action, attrs.failure, attempt, None, local=True)
            return
        if "result" not in attrs.details:
            return
        payloads = attrs.details["result"].payloads
        if step.hook:
            [hooks] = await self.converter.decode(payloads, [HookOutput])
            self.hooks_done(event, step, hooks, attempt, None, local=True)
            return
        [output] = await self.converter.decode(payloads, [AgentOutput])
        step.before = self.batches[step.batch].before
        if error_routing(flow_event.config, step.agent, output.state):
            self.hand_off(event, step, output.state, flow_event.config)
            step.before = _handler_input(output.state, flow_event.state)
        self.agent_done(event, step, output, local=True)

    async def batch_steps(self, event: HistoryEvent, activity_id: str, attempt: int) -> None:
        """A batch of local agents (workflows/_batch.py): a line per agent, as if each had run
        on its own. A failed marker is its first agent's (its id is that agent's)."""
        attrs = event.marker_recorded_event_attributes
        seq, first = parse_activity_id(activity_id)
        event_id = self.event_of(seq)
        flow_event = self.flow_event(event_id)
        if attrs.HasField("failure"):
            step = Step(first, event_id, self.new_local_batch(event, flow_event), None,
                        activity_id=activity_id)  # fmt: skip
            action: Action = "timed out" if is_timeout(attrs.failure) else "failed"
            self.step_failed(event, step, action, attrs.failure, attempt, None, local=True)
            return
        if "result" not in attrs.details:
            return
        [done] = await self.converter.decode(attrs.details["result"].payloads, [BatchOutput])
        number = -event.event_id * 1000  # one trace batch per agent: they ran one by one
        for agent, step_id, output in zip(done.agents, done.activity_ids, done.outputs,
                                          strict=True):  # fmt: skip
            number -= 1
            self.batches[number], self.local_batch = Batch(flow_event.state), number
            step = Step(agent, event_id, number, None, activity_id=step_id)
            step.before = self.batches[number].before
            self.agent_done(event, step, output, local=True)
        if (failure := done.failure) is not None:
            detail = f"{failure.type}: {failure.message} (local)"
            self.line(event, "failed", failure.agent, attempt=failure.attempt, batch=number - 1,
                      event_id=event_id, detail=detail)  # fmt: skip

    def local_batch_of(
        self, event: HistoryEvent, scheduled_at: datetime | None, flow_event: FlowEvent
    ) -> int:
        """Local steps have no scheduling event to group them by. One scheduled before the
        previous ones ended ran beside them (fan-out); else it ran after them."""
        batch = self.batches.get(self.local_batch) if self.local_batch is not None else None
        if (
            batch is not None
            and scheduled_at is not None
            and batch.open_until is not None
            and scheduled_at < batch.open_until
        ):
            return self.local_batch  # type: ignore[return-value]
        return self.new_local_batch(event, flow_event)

    def new_local_batch(self, event: HistoryEvent, flow_event: FlowEvent) -> int:
        number = -event.event_id  # never a workflow task's event id
        self.batches[number] = Batch(flow_event.state)
        self.local_batch = number
        return number


def _handler_input(output: State, event_state: State) -> State:
    """What a local error handler got (its input is not in history), to tell what it changed."""
    data = {key: output.data[key] for key in ROUTING_KEYS if key in output.data}
    return State(data=data, meta=dict(event_state.meta), context=dict(event_state.context))
