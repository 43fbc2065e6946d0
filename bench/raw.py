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

with workflow.unsafe.imports_passed_through():
    from bench.calls import mark

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
    local: bool = False  # every step as a local activity


@activity.defn(name="raw_step")
async def raw_step(step: Step) -> dict[str, Any]:
    mark()
    if step.sleep:
        await asyncio.sleep(step.sleep)
    if "inflate_bytes" in step.state and "blob" not in step.state:  # W5, like agents.inflate
        return {**step.state, "blob": "x" * step.state["inflate_bytes"], step.name: True}
    return {**step.state, step.name: True}


async def run_step(inp: RawInput, name: str, state: dict[str, Any]) -> dict[str, Any]:
    execute = workflow.execute_local_activity if inp.local else workflow.execute_activity
    result: dict[str, Any] = await execute(
        raw_step, Step(name, state, inp.sleep), start_to_close_timeout=TIMEOUT, retry_policy=RETRY
    )
    return result


@workflow.defn(name="RawSequential")
class RawSequential:
    @workflow.run
    async def run(self, inp: RawInput) -> dict[str, Any]:
        state = inp.state
        for index in range(inp.agents):
            state = await run_step(inp, f"a{index}", state)
        return state


@workflow.defn(name="RawFanOut")
class RawFanOut:
    @workflow.run
    async def run(self, inp: RawInput) -> dict[str, Any]:
        gate = asyncio.Semaphore(inp.max_concurrency)

        async def one(index: int) -> dict[str, Any]:
            async with gate:
                return await run_step(inp, f"a{index}", inp.state)

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
                workflow.continue_as_new(
                    RawInput(inp.agents, state, inp.sleep, done=done, local=inp.local)
                )
            state = await run_step(inp, "loop", state)
            done += 1
        return state


RAW_WORKFLOWS = [RawSequential, RawFanOut, RawLoop]
