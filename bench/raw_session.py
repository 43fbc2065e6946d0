"""A hand-written session for W6: the floor under agentflow's session workflow.

Kept out of ``bench/raw.py`` on purpose: the sandbox re-imports a workflow's module for every
new run, and W1/W2's raw runs should not pay for this workflow's class and dataclass too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.raw import RawInput, run_step


@dataclass
class RawEvent:
    """One event for a raw session: its id (unique in the session) and the flow to run."""

    id: str
    flow: RawInput


@workflow.defn(name="RawSession")
class RawSession:
    """A hand-written session: events queue up (signal or update) and run one at a time, each
    a sequence of steps; waiters ask for an event's result by id. No priorities, dedupe,
    context or continue-as-new: the floor under agentflow's session workflow (W6)."""

    def __init__(self) -> None:
        self.queue: list[RawEvent] = []
        self.results: dict[str, dict[str, Any]] = {}

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.queue))
            event = self.queue.pop(0)
            state = event.flow.state
            for index in range(event.flow.agents):
                state = await run_step(event.flow, f"a{index}", state)
            self.results[event.id] = state

    @workflow.signal(name="emit")
    def emit(self, event: RawEvent) -> None:
        self.queue.append(event)

    @workflow.update(name="emit_and_wait")
    async def emit_and_wait(self, event: RawEvent) -> dict[str, Any]:
        self.queue.append(event)
        return await self._result(event.id)

    @workflow.update(name="result")
    async def result(self, event_id: str) -> dict[str, Any]:
        return await self._result(event_id)

    async def _result(self, event_id: str) -> dict[str, Any]:
        await workflow.wait_condition(lambda: event_id in self.results)
        return self.results[event_id]
