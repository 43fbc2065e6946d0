"""W7B: a batched subscriber against an unbatched one (issue 19: at least 3x the deliveries
per second at ``max_events = 100``).

``events`` events published to a subscriber agent of its own flow and task queue, every
publish issued at once (``IN_FLIGHT`` at a time, as in W7). Once with ``subscribes`` alone
(each delivery is a session event and an agent call), once with ``batch = { max_events,
max_wait }`` (the deliveries gather in the agent's batcher, workflows/batcher.py, and each
batch is one session event and one call). Each on a topic of its own; which goes first
alternates per repeat. ``deliveries_per_s``: events ÷ seconds from the first publish to the
last event's agent call; ``speedup``: batched ÷ unbatched deliveries per second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

from temporalio.client import Client

from agentflow.client.bus import client_request, forget, publish
from agentflow.config import FlowConfig, parse_config
from agentflow.models.flow import Event, State
from agentflow.worker.serve import serving
from bench.bus import ARRIVALS, IN_FLIGHT, MARK, PHASE_TIMEOUT_SECONDS, REPEATS
from bench.systems import REPO, AgentflowSystem

Metrics = dict[str, float]
AGENT = "taker"
MAX_EVENTS = 100
MAX_WAIT = "1s"


async def batched(event: Event, state: State) -> dict[str, Any]:
    """The batched subscriber: notes when it first ran for each publish of its batch."""
    now = time.perf_counter()
    for item in state.data.get("events", []):
        _arrive(item["data"].get(MARK), now)
    return {"batched": len(state.data.get("events", []))}


async def one_by_one(event: Event, state: State) -> dict[str, Any]:
    """The unbatched subscriber: notes when it first ran for its publish."""
    _arrive(state.data.get(MARK), time.perf_counter())
    return {AGENT: True}


def _arrive(mark: object, now: float) -> None:
    if isinstance(mark, str):
        key = (mark, AGENT)
        if key in ARRIVALS:
            REPEATS.append(key)
        else:
            ARRIVALS[key] = now


def batch_config(flow: str, topic: str, batch: bool, local: bool) -> FlowConfig:
    agent: dict[str, Any] = {"handler": "bench.bus_batch:one_by_one", "subscribes": [topic]}
    if batch:
        agent = {"handler": "bench.bus_batch:batched", "subscribes": [topic],
                 "batch": {"max_events": MAX_EVENTS, "max_wait": MAX_WAIT}}  # fmt: skip
    raw = {
        "agent_flow": {"name": flow},
        "orchestration": {"mode": "sequential", "sequential_agents": [AGENT],
                          "timeout_seconds": 3600, "local_agents": local},
        "agents": {AGENT: agent},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def _burst(client: Client, config: FlowConfig, topic: str, events: int) -> float:
    """Seconds from the first publish to the last event's agent call."""
    marks = [f"w7b-{uuid.uuid4().hex[:8]}-{index}" for index in range(events)]
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(mark: str) -> None:
        async with gate:
            request = client_request(config, topic, {MARK: mark}, identity="bench",
                                     event_id=mark)  # fmt: skip
            await publish(client, request)

    first = time.perf_counter()
    await asyncio.gather(*(one(mark) for mark in marks))
    keys = [(mark, AGENT) for mark in marks]
    async with asyncio.timeout(PHASE_TIMEOUT_SECONDS):
        while any(key not in ARRIVALS for key in keys):
            await asyncio.sleep(0.005)
    return max(ARRIVALS[key] for key in keys) - first


async def w7_batch(system: AgentflowSystem, events: int, batched_first: Iterator[bool]) -> Metrics:
    ARRIVALS.clear()
    REPEATS.clear()
    tag = uuid.uuid4().hex[:8]
    seconds: dict[str, float] = {}
    order = ("batched", "unbatched") if next(batched_first) else ("unbatched", "batched")
    for way in order:
        topic = f"bench.w7b.{way}.{tag}"
        config = batch_config(f"w7b-{way}-{tag}", topic, way == "batched", system.local)
        async with serving(system.client, [(config, REPO)], task_queue=f"w7b-{way}-{tag}"):
            try:
                seconds[way] = await _burst(system.client, config, topic, events)
            finally:  # while the bus worker, which serves the registry, still runs
                await forget(system.client, config.name)
    return {
        "unbatched_seconds": seconds["unbatched"],
        "batched_seconds": seconds["batched"],
        "unbatched_deliveries_per_s": events / seconds["unbatched"],
        "batched_deliveries_per_s": events / seconds["batched"],
        "speedup": seconds["unbatched"] / seconds["batched"],
        "repeated_calls": float(len(REPEATS)),
    }
