"""A session's book of events: the priority queue, deduplication by event id, the counts, and
what it carries across continue-as-new. Pure bookkeeping, no workflow calls but the clock.

Everything here is carried in the continue-as-new input, which Temporal limits to 2 MB, so the
queue and the remembered ids are bounded in bytes as well as in number.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.limits import MAX_SEEN_BYTES
    from agentflow.models.flow import PRIORITY_KEYS, FlowResult
    from agentflow.models.session import (
        EmitRequest,
        EventOutcome,
        QueuedEvent,
        QueuedView,
        SessionCounts,
        SessionState,
        received_config_key,
    )
    from agentflow.models.usage import Usage

# Bytes of queued event data a session holds; beyond it events are dead-lettered.
MAX_QUEUED_BYTES = 1024 * 1024
# Outcomes of the last events, for clients that ask after the fact; the newest keep their
# full result as far as this many bytes of results go when the session continues as new.
RECENT_OUTCOMES = 100
CARRIED_RESULT_BYTES = 256 * 1024
# The configs a run hands on beyond its queued events' (those events' clients name by key).
KEPT_CONFIGS = 4
KEPT_CONFIG_BYTES = 256 * 1024
# What the context may hold: it is carried in every continue-as-new input (2 MB at most).
MAX_CONTEXT_BYTES = 512 * 1024

Accepted = Literal["queued", "duplicate", "full"]


class EventBook:
    """The queue of one session, ordered by priority then arrival."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.counts: SessionCounts = state.counts
        self.queue: list[QueuedEvent] = list(state.queue)
        self.configs: dict[str, FlowConfig] = dict(state.configs)
        self.seen: OrderedDict[str, int] = OrderedDict((id_, len(id_)) for id_ in state.seen)
        self.seen_bytes = sum(self.seen.values())
        self.queued_bytes = sum(len(q.event.model_dump_json()) for q in self.queue)
        self.recent: OrderedDict[str, EventOutcome] = OrderedDict(
            (o.event_id, o) for o in state.recent
        )
        self.next_seq = state.next_seq

    def __len__(self) -> int:
        return len(self.queue)

    def knows(self, event_id: str) -> bool:
        return event_id in self.seen

    def accept(self, request: EmitRequest, now: datetime, key: str | None = None) -> Accepted:
        """Queue a new event; a repeated id is a duplicate, never queued twice. ``key``: the
        config's key, when the request named a config the session has (``EmitByKey``)."""
        event = request.event
        if key is None:  # the config came with the event: later events may name it by key
            key = received_config_key(request.config)
            self.configs.setdefault(key, request.config)
        self.configs[key] = self.configs.pop(key)  # the most recently used last
        if self.knows(event.id):
            self.counts.duplicates += 1
            return "duplicate"
        self.counts.emitted += 1
        self._remember(event.id)
        size = len(event.model_dump_json())
        too_many = len(self.queue) >= self.state.max_queued_events
        if too_many or self.queued_bytes + size > MAX_QUEUED_BYTES:
            return "full"
        queued = QueuedEvent(seq=self.next_seq, event=event, config_key=key, accepted_at=now,
                             redrive_of=request.redrive_of)  # fmt: skip
        self.next_seq += 1
        self.queue.append(queued)
        self.queued_bytes += size
        return "queued"

    def pop(self) -> QueuedEvent:
        """The next event: highest priority first, then the earliest to arrive."""
        best = min(self.queue, key=lambda q: (PRIORITY_KEYS[q.event.priority], q.seq))
        self.queue.remove(best)
        self.queued_bytes -= len(best.event.model_dump_json())
        return best

    def config(self, queued: QueuedEvent) -> FlowConfig:
        return self.configs[queued.config_key]

    def processed(self, queued: QueuedEvent, result: FlowResult) -> None:
        """Count an event that completed (or that its error handler handled)."""
        self.count_usage(result)
        if result.status == "handled":
            self.counts.handled += 1
        else:
            self.counts.completed += 1
        self.finished(EventOutcome(event_id=queued.event.id, session_id=self.state.session_id,
                                   status=result.status, result=result))  # fmt: skip

    def count_usage(self, result: FlowResult | None) -> None:
        """Add what an event's LLM agents used to the session's total (failed ones too)."""
        if result is not None and result.usage:
            self.counts.usage = (self.counts.usage or Usage()) + result.usage

    def queued_views(self) -> list[QueuedView]:
        return [
            QueuedView(event_id=q.event.id, seq=q.seq, priority=q.event.priority,
                       accepted_at=q.accepted_at, deadline=q.event.deadline)
            for q in sorted(self.queue, key=lambda q: q.seq)
        ]  # fmt: skip

    def finished(self, outcome: EventOutcome) -> None:
        self.recent[outcome.event_id] = outcome
        while len(self.recent) > RECENT_OUTCOMES:
            self.recent.popitem(last=False)

    def carried_outcomes(self) -> list[EventOutcome]:
        """The recent outcomes, the newest with their results while they fit the budget."""
        budget, carried = CARRIED_RESULT_BYTES, []
        for outcome in reversed(self.recent.values()):
            size = len(outcome.result.model_dump_json()) if outcome.result else 0
            if size > budget:
                outcome = outcome.model_copy(update={"result": None})
            budget -= min(size, budget)
            carried.append(outcome)
        return carried[::-1]

    def carry(self, context: dict[str, object], keep_recent: bool) -> SessionState:
        """The state to continue as new with: the configs of queued events and, with
        ``keep_recent``, the most recently used ones (what ``emit_by_key`` names), as far as
        ``KEPT_CONFIGS`` and ``KEPT_CONFIG_BYTES`` go."""
        keys = {q.config_key for q in self.queue}
        if keep_recent:
            keys |= self._recent_configs()
        return self.state.model_copy(
            update={
                "context": context,
                "queue": list(self.queue),
                "configs": {k: v for k, v in self.configs.items() if k in keys},
                "counts": self.counts,
                "seen": list(self.seen),
                "recent": self.carried_outcomes(),
                "next_seq": self.next_seq,
                "runs": self.state.runs + 1,
                "in_flight": None,
            }
        )

    def _recent_configs(self) -> set[str]:
        kept: set[str] = set()
        budget = KEPT_CONFIG_BYTES
        for key in reversed(self.configs):
            size = len(self.configs[key].model_dump_json())
            if len(kept) >= KEPT_CONFIGS or size > budget:
                break
            kept.add(key)
            budget -= size
        return kept

    def _remember(self, event_id: str) -> None:
        self.seen[event_id] = len(event_id)
        self.seen_bytes += len(event_id)
        while len(self.seen) > self.state.dedupe_window or self.seen_bytes > MAX_SEEN_BYTES:
            _, size = self.seen.popitem(last=False)
            self.seen_bytes -= size


def check_context(result: FlowResult) -> None:
    """Fail the event (FlowFailed) if it left a context too large to carry."""
    size = len(result.state.model_dump_json(include={"context"}))
    if size > MAX_CONTEXT_BYTES:
        result.status = "failed"
        result.error = (
            f"the session context grew to {size / 1024:.0f} KB; at most "
            f"{MAX_CONTEXT_BYTES // 1024} KB (it is carried across continue-as-new): keep large "
            "data outside the session and store a reference"
        )
        raise ApplicationError(result.error, result, type="FlowFailed")
