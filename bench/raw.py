"""The floor on Temporal: hand-written workflows and one activity doing the agents' work.

No config snapshot, no AgentResult bookkeeping, no heartbeat: what a Temporal user would write
by hand for the same flows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=4)
TIMEOUT = timedelta(seconds=60)
ITERATIONS_PER_RUN = 500  # the same continue-as-new interval as agentflow's loop mode


@dataclass
class Step:
    name: str
    state: dict[str, Any]
    sleep: float = 0.0


@dataclass
class RawInput:
    agents: int
    state: dict[str, Any] = field(default_factory=dict)
    sleep: float = 0.0
    max_concurrency: int = 100
    done: int = 0


@activity.defn(name="raw_step")
async def raw_step(step: Step) -> dict[str, Any]:
    if step.sleep:
        await asyncio.sleep(step.sleep)
    if "inflate_bytes" in step.state and "blob" not in step.state:  # W5, like agents.inflate
        return {**step.state, "blob": "x" * step.state["inflate_bytes"], step.name: True}
    return {**step.state, step.name: True}


async def _step(name: str, state: dict[str, Any], sleep: float) -> dict[str, Any]:
    result: dict[str, Any] = await workflow.execute_activity(
        raw_step, Step(name, state, sleep), start_to_close_timeout=TIMEOUT, retry_policy=RETRY
    )
    return result


@workflow.defn(name="RawSequential")
class RawSequential:
    @workflow.run
    async def run(self, inp: RawInput) -> dict[str, Any]:
        state = inp.state
        for index in range(inp.agents):
            state = await _step(f"a{index}", state, inp.sleep)
        return state


@workflow.defn(name="RawFanOut")
class RawFanOut:
    @workflow.run
    async def run(self, inp: RawInput) -> dict[str, Any]:
        gate = asyncio.Semaphore(inp.max_concurrency)

        async def one(index: int) -> dict[str, Any]:
            async with gate:
                return await _step(f"a{index}", inp.state, inp.sleep)

        merged = dict(inp.state)
        for output in await asyncio.gather(*(one(i) for i in range(inp.agents))):
            merged.update(output)
        return merged


@workflow.defn(name="RawLoop")
class RawLoop:
    @workflow.run
    async def run(self, inp: RawInput) -> dict[str, Any]:
        state, done = inp.state, inp.done
        while done < inp.agents:
            if done - inp.done >= ITERATIONS_PER_RUN:
                workflow.continue_as_new(RawInput(inp.agents, state, inp.sleep, done=done))
            state = await _step("loop", state, inp.sleep)
            done += 1
        return state


RAW_WORKFLOWS = [RawSequential, RawFanOut, RawLoop]
