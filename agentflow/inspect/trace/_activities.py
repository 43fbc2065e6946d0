"""Trace lines of regular activities: agents, event hooks and an LLM agent's tool calls, each
read from its scheduled / started / completed / failed / timed-out history events.

Temporal writes an activity's "started" event only when its last attempt ends, keeping the
previous attempt's failure: so a retried agent shows one ``retried`` line (attempt N, the last
failure) rather than one line per failed attempt."""

from __future__ import annotations

from typing import Any

from temporalio.api.history.v1 import HistoryEvent

from agentflow.inspect.trace._entry import (
    HOOKS,
    Action,
    event_time,
    failure_text,
    parse_activity_id,
)
from agentflow.inspect.trace._steps import Batch, DecoderBase, Step
from agentflow.inspect.trace._tools import asked_for, model_step_root, tool_returned, tool_scheduled
from agentflow.models.compensation import CompensationInput, CompensationOutput
from agentflow.models.flow import AgentInput, AgentOutput, HookInput, HookOutput
from agentflow.models.llm import ToolInput, ToolOutput
from agentflow.models.recall import Recalled, RecallInput
from agentflow.names import (
    MEMORY_REMEMBER,
    MEMORY_RETRIEVE,
    RUN_COMPENSATION,
    RUN_HOOKS,
    RUN_TOOL,
    is_agent_call,
)


class MemoryCall(RecallInput):
    """What the trace reads of a recall or remember input (either decodes): the agent."""

    query: str = ""


def recalled(found: Recalled) -> str:
    """``recalled 2: 3f2a9c01 0.81 docs/a.md#2, …`` (ids, scores and sources)."""
    hits = ", ".join(f"{h.id[:8]} {h.score:.2f} {h.source}#{h.position}" for h in found.hits)
    return f"recalled {len(found.hits)}" + (f": {hits}" if hits else "")


class ActivitySteps(DecoderBase):
    """Reads the history events of activities the workflow scheduled."""

    async def scheduled(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        kind, batch = attrs.activity_type.name, attrs.workflow_task_completed_event_id
        step: Step | None = None
        if is_agent_call(kind):  # "agent:NAME", or "run_agent" in runs from before it
            [request] = await self.converter.decode(attrs.input.payloads, [AgentInput])
            if request.turn is not None:  # a model step after tool calls: the same agent call
                self.model_step_scheduled(event, request)
                return
            source = self.completed_by_activity.get(request.published_by or "")
            step = Step(request.agent, request.event.id, batch, request.state,
                        topic=request.topic, source_event=source,
                        activity_id=attrs.activity_id)  # fmt: skip
            flow_event = self.flow_event(step.event_id)
            if request.topic is None:
                self.batches.setdefault(batch, Batch(request.state))
            self.hand_off(event, step, request.state, flow_event.config)
            detail = f"{request.topic} from {request.event.source_agent}" if request.topic else ""
            self.line(event, "started", step.agent, attempt=1, detail=detail, **step.tags)
        elif kind == RUN_TOOL:
            [tool] = await self.converter.decode(attrs.input.payloads, [ToolInput])
            call = tool_scheduled(attrs.activity_id, tool)
            first = self.tool_loops.get(call.root)
            self.tool_calls[event.event_id] = (call, first)
            self.line(event, "tool", call.agent, detail=call.detail,
                      **(first.tags if first else {}))  # fmt: skip
        elif kind in (MEMORY_RETRIEVE, MEMORY_REMEMBER):  # a memory-enabled agent's
            [memory] = await self.converter.decode(attrs.input.payloads, [MemoryCall])
            self.memory_calls[event.event_id] = (memory.agent, kind)
        elif kind == RUN_COMPENSATION:  # a saga's undo step (workflows/_compensate.py)
            [undo] = await self.converter.decode(attrs.input.payloads, [CompensationInput])
            self.memory_calls[event.event_id] = (undo.agent, kind)  # read like a memory call
            self.line(event, "compensating", undo.agent, detail=undo.path)
        elif kind == RUN_HOOKS:
            [hooks] = await self.converter.decode(attrs.input.payloads, [HookInput])
            step = Step(HOOKS, hooks.event.id, batch, hooks.state, hook=hooks.hook,
                        activity_id=attrs.activity_id)  # fmt: skip
            self.flow_event(step.event_id)
            self.line(event, "started", HOOKS, attempt=1, detail=hooks.hook, **step.tags)
        if step is not None:
            self.steps[event.event_id] = step
            self.local_batch = None  # a scheduled step ends a run of local ones
            seq, _ = parse_activity_id(attrs.activity_id)
            if self.arrivals is not None and seq is not None:
                self.arrivals.by_seq[seq] = step.event_id  # the input names it: authoritative

    def model_step_scheduled(self, event: HistoryEvent, request: AgentInput) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        root = model_step_root(attrs.activity_id)
        first = self.tool_loops.get(root)
        batch = first.batch if first else attrs.workflow_task_completed_event_id
        step = Step(request.agent, request.event.id, batch,
                    first.before if first else request.state, topic=request.topic,
                    activity_id=root)  # fmt: skip
        if first is not None:
            step.tags = first.tags
        self.steps[event.event_id] = step

    async def tool_returned(self, event: HistoryEvent, scheduled: int) -> bool:
        """A ``run_tool`` activity's result, as a ``tool`` line; False if it was no tool."""
        if (found := self.tool_calls.pop(scheduled, None)) is None:
            return False
        call, first = found
        result = event.activity_task_completed_event_attributes.result.payloads
        [output] = await self.converter.decode(result, [ToolOutput])
        self.line(event, "tool", call.agent, detail=tool_returned(output),
                  **(first.tags if first else {}))  # fmt: skip
        return True

    def tool_failed(self, event: HistoryEvent, scheduled: int, failure: Any) -> bool:
        """A ``run_tool`` activity that failed for good; False if it was no tool."""
        if (found := self.tool_calls.pop(scheduled, None)) is None:
            return False
        call, first = found
        detail = f"{call.detail.removesuffix(' called')} failed: {failure_text(failure)}"
        self.line(event, "tool", call.agent, detail=detail, **(first.tags if first else {}))
        return True

    def attempt_started(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_started_event_attributes
        if (step := self.steps.get(attrs.scheduled_event_id)) is None:
            return
        step.attempt, step.started = attrs.attempt, event_time(event)
        if attrs.attempt > 1:
            detail = (
                f"after {attrs.attempt - 1} failed attempt(s); "
                f"last: {failure_text(attrs.last_failure)}"
            )
            self.line(event, "retried", step.agent, attempt=attrs.attempt, detail=detail,
                      **step.tags)  # fmt: skip

    async def completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        if await self.tool_returned(event, attrs.scheduled_event_id):
            return
        if (memory := self.memory_calls.pop(attrs.scheduled_event_id, None)) is not None:
            agent, kind = memory
            if kind == RUN_COMPENSATION:
                [done] = await self.converter.decode(attrs.result.payloads, [CompensationOutput])
                took = (done.ended_at - done.started_at).total_seconds() * 1000
                self.line(event, "compensated", agent, attempt=done.attempt, duration_ms=took)
            elif kind == MEMORY_RETRIEVE:
                [found] = await self.converter.decode(attrs.result.payloads, [Recalled])
                self.line(event, "memory", agent, detail=recalled(found))
            else:
                [new] = await self.converter.decode(attrs.result.payloads, [int])
                self.line(event, "memory", agent, detail=f"remembered its turn ({new} new)")
            return
        if (step := self.steps.pop(attrs.scheduled_event_id, None)) is None:
            return
        if step.hook:
            [hooks] = await self.converter.decode(attrs.result.payloads, [HookOutput])
            since = step.started or event_time(event)
            duration = (event_time(event) - since).total_seconds() * 1000
            self.hooks_done(event, step, hooks, step.attempt, duration)
        else:
            [output] = await self.converter.decode(attrs.result.payloads, [AgentOutput])
            if asked := asked_for(output):  # not done: its tools run next
                self.tool_loops.setdefault(step.activity_id, step)
                self.line(event, "tool", step.agent, detail=asked, **step.tags)
                return
            self.tool_loops.pop(step.activity_id, None)
            self.agent_done(event, step, output)

    def failed(self, event: HistoryEvent, action: Action, scheduled: int, failure: Any) -> None:
        if self.tool_failed(event, scheduled, failure):
            return
        if (memory := self.memory_calls.pop(scheduled, None)) is not None:
            if memory[1] == RUN_COMPENSATION:  # dead-lettered by the run (workflows/_compensate)
                self.line(event, "compensation failed", memory[0], detail=failure_text(failure))
                return
            doing = "recall" if memory[1] == MEMORY_RETRIEVE else "remember"
            self.line(event, "memory", memory[0],
                      detail=f"{doing} failed: {failure_text(failure)}")  # fmt: skip
            return
        if (step := self.steps.pop(scheduled, None)) is None:
            return
        since = step.started or event_time(event)
        duration = (event_time(event) - since).total_seconds() * 1000
        self.step_failed(event, step, action, failure, step.attempt, duration)
