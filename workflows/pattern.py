"""A pattern workflow: one ``[patterns.NAME]`` of one flow, for one key (``agentflow-pattern:
FLOW:NAME:KEY``), on the bus's task queue.

The bus's fan-out evaluates the pattern's ``key`` on each event of a watched topic and
signals-with-start this workflow with it (``pattern_event``), so the events of a key are
matched here, durably; each window is a Temporal timer. A match publishes the derived event
through the ``bus_publish`` activity, under an id made of the pattern, the key and the matched
events' ids, so a retried publish is the same event (the bus shard dedupes it). The workflow
ends once no window has been open for ``linger`` (its result: how many matches it published;
an event repeated by a retried fan-out within it is dropped as seen), and continues as new,
carrying its windows, the events not yet applied and the matches not yet published, every
``events_per_run`` events, so its history stays bounded under any burst.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agentflow.models.bus import PublishRequest
    from agentflow.models.pattern import (
        PatternEvent,
        PatternState,
        PatternView,
        apply,
        derived_event_id,
        expire,
        next_deadline,
        publisher_of,
    )
    from agentflow.names import (
        PATTERN_QUERY,
        PATTERN_SIGNAL,
        PATTERN_WORKFLOW,
        PUBLISH_ACTIVITY,
    )

PUBLISH_TIMEOUT = timedelta(seconds=30)
# Runs started before it publish every match they found before continuing as new.
HAND_ON_PATCH = "pattern-hand-on-matches"
# Runs started before it end as soon as no window is open (a repeated event after that began
# a new workflow, which took it as new).
LINGER_PATCH = "pattern-linger"


@workflow.defn(name=PATTERN_WORKFLOW)
class PatternWorkflow:
    @workflow.init
    def __init__(self, state: PatternState) -> None:
        self.state = state
        self.received = 0  # events signalled to this run

    @workflow.signal(name=PATTERN_SIGNAL)
    def event(self, event: PatternEvent) -> None:
        self.state.pending.append(event)
        self.received += 1

    @workflow.query(name=PATTERN_QUERY)
    def view(self) -> PatternView:
        state = self.state
        return PatternView(flow=state.flow, name=state.name, key=state.key,
                           kind=state.config.kind, windows=state.windows,
                           matches=state.matches)  # fmt: skip

    @workflow.run
    async def run(self, state: PatternState) -> int:
        while True:
            found, self.state.unpublished = self.state.unpublished, []
            while self.state.pending:
                found += apply(self.state, self.state.pending.pop(0))
            found += expire(self.state, workflow.now())
            for n, ids in enumerate(found):
                # Events that arrive while a run publishes join it: a full run hands the rest
                # of its matches on, so no run takes more than one publish's worth over.
                if n and self._full() and workflow.patched(HAND_ON_PATCH):
                    self.state.unpublished = found[n:]
                    break
                await self._publish(ids)
            if self._full():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            deadline = next_deadline(self.state)
            if deadline is None and not self.state.pending:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.state.pending and workflow.patched(LINGER_PATCH):
                    linger = timedelta(seconds=self.state.config.linger)
                    with contextlib.suppress(asyncio.TimeoutError):  # ids seen stay known
                        await workflow.wait_condition(
                            lambda: bool(self.state.pending), timeout=linger
                        )
                if not self.state.pending:
                    return self.state.matches  # idle: the key's next event starts anew
                continue
            timeout = None if deadline is None else deadline - workflow.now()
            if timeout is not None:
                timeout = max(timeout, timedelta(milliseconds=1))
            with contextlib.suppress(asyncio.TimeoutError):  # a window closed: expire() sees it
                await workflow.wait_condition(lambda: bool(self.state.pending), timeout=timeout)

    def _full(self) -> bool:
        """The run has taken its events (or Temporal suggests a new run)."""
        return self.received >= self.state.events_per_run or (
            workflow.info().is_continue_as_new_suggested()
        )

    async def _publish(self, ids: list[str]) -> None:
        state = self.state
        request = PublishRequest(
            topic=state.config.publish,
            data={"pattern": state.name, "flow": state.flow, "kind": state.config.kind,
                  "key": state.key, "events": ids},
            event_id=derived_event_id(state.flow, state.name, state.key, ids),
            key=state.key, publisher=publisher_of(state.flow, state.name),
        )  # fmt: skip
        await workflow.execute_activity(
            PUBLISH_ACTIVITY, request, result_type=str, start_to_close_timeout=PUBLISH_TIMEOUT
        )
        state.matches += 1
