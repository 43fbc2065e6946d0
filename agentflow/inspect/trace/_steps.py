"""The trace decoder's state and what every kind of step shares (_decoder.py
composes it with the readers of each kind of history event): the flow events of the run, and
a step's outcome — completed (what it changed, what it published, where it routed), failed,
handed off to an ``[error_routing]`` handler, or rejected by a hook."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from agentflow.config import FlowConfig
from agentflow.inspect.trace._arrivals import Arrivals
from agentflow.inspect.trace._bus import fan_out, publications, unpublished
from agentflow.inspect.trace._entry import (
    ERROR_HANDOFF,
    HOOKS,
    Action,
    TraceEntry,
    event_time,
    failure_text,
    failure_type,
    innermost,
)
from agentflow.inspect.trace._tools import ToolCallLine
from agentflow.models.flow import AgentOutput, Event, HookOutput, State
from agentflow.models.session import DeadLetter, initial_state
from agentflow.models.state import changed_keys, merge_states


class Step:
    """One agent call or event hook point: what its scheduled event (or, for a local activity,
    its marker) told us."""

    def __init__(
        self,
        agent: str,
        event_id: str,
        batch: int,
        before: State | None,
        *,
        hook: str = "",
        topic: str | None = None,
        source_event: int | None = None,
        activity_id: str = "",
    ) -> None:
        self.agent, self.event_id, self.batch, self.hook = agent, event_id, batch, hook
        self.activity_id = activity_id
        self.before = before  # the state it got, to tell what it changed
        self.topic = topic
        self.attempt = 1
        self.started: datetime | None = None
        # Fields every line of this step carries.
        self.tags: dict[str, Any] = {"batch": batch, "event_id": event_id}
        if topic is not None:
            self.tags.update(topic=topic, source_event=source_event)


class Batch:
    """Steps of one event that ran side by side: the state they all got, and their outputs
    (merged, in order, into what the event's next step gets)."""

    def __init__(self, before: State) -> None:
        self.before = before
        self.outputs: list[State] = []
        self.open_until: datetime | None = None  # local steps: when the last member ended


class FlowEvent:
    """One flow event of the run: the config it runs with and the last state passed on."""

    def __init__(self, config: FlowConfig | None, state: State) -> None:
        self.config, self.state = config, state


class DecoderBase:
    """What the decoder knows of the run so far, and the lines every kind of step ends with."""

    def __init__(self, client: Client, workflow_id: str, run_id: str) -> None:
        self.converter = client.data_converter
        self.workflow_id, self.run_id = workflow_id, run_id
        self.entries: list[TraceEntry] = []
        self.workflow_type = ""
        self.event_id = ""  # the flow event of a mode workflow (a session's lines set theirs)
        self.config: FlowConfig | None = None
        self.started_at: datetime | None = None
        self.steps: dict[int, Step] = {}  # scheduled history event -> step
        self.completed_by_activity: dict[str, int] = {}  # activity id -> completed event
        self.batches: dict[int, Batch] = {}
        self.local_batch: int | None = None
        # LLM agents calling tools (_tools.py): the first model step's step,
        # by its activity id, until the agent answers; and the tool calls in flight.
        self.tool_loops: dict[str, Step] = {}
        self.tool_calls: dict[int, tuple[ToolCallLine, Step | None]] = {}
        # Memory-enabled agents' recall and remember activities in flight: (agent, type).
        self.memory_calls: dict[int, tuple[str, str]] = {}
        self.flow_events: dict[str, FlowEvent] = {}
        self.current_event = ""
        # A session: accepted events not yet started, their numbers, its context, its letters.
        self.arrivals: Arrivals | None = None
        self.flow = ""
        self.waiting: dict[str, tuple[Event, FlowConfig | None]] = {}
        self.context: dict[str, Any] = {}
        self.letters: dict[int, DeadLetter | None] = {}  # initiated event -> letter
        self.lettered: set[str] = set()
        self.children: dict[int, Step] = {}  # a flow agent's initiated event -> its step
        self.flow_lines: dict[int, TraceEntry] = {}  # ... -> its started line

    def line(self, event: HistoryEvent, action: Action, agent: str = "", **fields: Any) -> None:
        fields.setdefault("event_id", self.event_id)
        self.entries.append(
            TraceEntry(
                time=event_time(event),
                workflow_id=self.workflow_id,
                run_id=self.run_id,
                history_event_id=event.event_id,
                agent=agent,
                action=action,
                **fields,
            )
        )

    def flow_event(self, event_id: str) -> FlowEvent:
        """The flow event a step belongs to. A session runs one event at a time, so a new one
        means the previous has ended: its context (unless dead-lettered) is the session's."""
        if event_id != self.current_event:
            previous = self.flow_events.pop(self.current_event, None)
            if previous is not None and self.current_event not in self.lettered:
                self.context = previous.state.context
            self.current_event, self.batches, self.local_batch = event_id, {}, None
        known = self.flow_events.get(event_id)
        if known is None:
            emitted, config = self.waiting.pop(event_id, (None, self.config))
            state = initial_state(emitted, self.context) if emitted else State()
            known = self.flow_events[event_id] = FlowEvent(config, state)
        return known

    def event_of(self, seq: int | None) -> str:
        if seq is None or self.arrivals is None:
            return self.event_id
        return self.arrivals.by_seq.get(seq, "")

    def hand_off(
        self, event: HistoryEvent, step: Step, state: State, config: FlowConfig | None
    ) -> None:
        """An ``[error_routing]`` handler's step: the failed agent hands the event over."""
        if routed := error_routing(config, step.agent, state):
            failed, kind = routed
            self.line(event, "handed off", failed, detail=f"{ERROR_HANDOFF}{step.agent} ({kind})",
                      **step.tags)  # fmt: skip

    def agent_done(
        self, event: HistoryEvent, step: Step, output: AgentOutput, local: bool = False
    ) -> None:
        flow_event = self.flow_event(step.event_id)
        before = step.before or flow_event.state
        self.completed_by_activity[step.activity_id] = event.event_id
        config = flow_event.config
        tags = dict(step.tags)
        tags.update(fan_out(config, output.state))  # the bus's fan-out: where it delivered
        detail = "local" if local else ""
        if output.cached:  # a result cache hit (activities/cache.py): the agent did not run
            saved = output.saved.total_tokens if output.saved else 0
            detail = ", ".join([*filter(None, [detail]), "cached"]) + (
                f", saved {saved} tokens" if saved else "")  # fmt: skip
        if output.breaker:  # a breaker it closed, or the fallback it ran (activities/breaker.py)
            detail = ", ".join(filter(None, [detail, output.breaker]))
        self.line(
            event, "completed", step.agent, attempt=output.attempt,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(before, output.state), detail=detail, **tags,
        )  # fmt: skip
        for sent in publications(self.run_id, step.activity_id, config, output.state):
            self.line(event, "published", step.agent, topic=sent.topic, batch=step.batch,
                      event_id=step.event_id, bus_event=sent.bus_event,
                      detail=sent.detail)  # fmt: skip
        # Route mode follows meta["route"]; other modes ignore it, so it is no hand-off there.
        if config is not None and config.mode == "route" and output.state.meta.get("route"):
            self.line(event, "handed off", step.agent, detail=f"to {output.state.meta['route']}",
                      batch=step.batch, event_id=step.event_id)  # fmt: skip
        if step.topic is None:
            self.passed_on(step, flow_event, output.state, output.ended_at if local else None)

    def passed_on(
        self, step: Step, flow_event: FlowEvent, state: State, ended: datetime | None
    ) -> None:
        """What the event's next step gets: the outputs of this step's batch, merged."""
        state = unpublished(state)
        batch = self.batches.get(step.batch)
        if batch is None:
            flow_event.state = state
            return
        batch.outputs.append(state)
        flow_event.state = merge_states(batch.before, batch.outputs)
        if ended is not None and (batch.open_until is None or ended > batch.open_until):
            batch.open_until = ended

    def hooks_done(
        self,
        event: HistoryEvent,
        step: Step,
        output: HookOutput,
        attempt: int,
        duration: float | None,
        local: bool = False,
    ) -> None:
        flow_event = self.flow_event(step.event_id)
        before = step.before or flow_event.state
        self.line(event, "completed", HOOKS, attempt=attempt, duration_ms=duration,
                  changed_keys=changed_keys(before, output.state),
                  detail=step.hook + (" (local)" if local else ""), **step.tags)  # fmt: skip
        if output.rejected_by:
            self.line(event, "rejected", HOOKS, **step.tags,
                      detail=f"{step.hook} hook {output.rejected_by}: {output.reason}")  # fmt: skip
        flow_event.state = output.state

    def step_failed(
        self,
        event: HistoryEvent,
        step: Step,
        action: Action,
        failure: Any,
        attempt: int,
        duration: float | None,
        local: bool = False,
    ) -> None:
        detail = (f"{step.hook}: " if step.hook else "") + failure_text(failure)
        self.line(event, action, step.agent, attempt=attempt, duration_ms=duration,
                  detail=detail + (" (local)" if local else ""), **step.tags)  # fmt: skip
        if failure_type(failure) == "HookRejected":  # an agent hook raised FatalError
            self.line(event, "rejected", step.agent, detail=innermost(failure).message,
                      **step.tags)  # fmt: skip


def error_routing(config: FlowConfig | None, agent: str, state: State) -> tuple[str, str] | None:
    """(failed agent, error kind) when ``agent`` runs as the error handler of a failed step:
    its state carries what ``workflows/_event.py`` hands it, and config names it the handler."""
    data = state.data
    kind = data.get("error_type")
    if config is None or not isinstance(kind, str) or "original_event" not in data:
        return None
    if config.error_routing.handler_for(kind) != agent:
        return None
    return str(data.get("failed_agent") or ""), kind
