"""W7F: a filtered bus subscription against a plain one (issue 19: at most 1.1x the cost).

The same burst as W7's throughput phase (bench/bus.py): ``events`` events published to
``subscribers`` subscriber flows of one no-op agent, each on its own task queue, every publish
issued at once. Once with ``[bus] subscribes = ["TOPIC"]``, once with ``[{ topic = "TOPIC",
when = "..." }]``, a CEL filter that holds for every event (so both deliver the same), each
on a topic of its own. ``cost_ratio``: filtered ÷ plain seconds, first publish → last agent
running; which goes first alternates per repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from agentflow.config import FlowConfig, parse_config
from bench.bus import ARRIVALS, MARK, REPEATS, bus_burst, subscribed, subscriber_config
from bench.systems import REPO, AgentflowSystem

Metrics = dict[str, float]
# Reads the data, the metadata and a variable, as a real filter would.
WHEN = f"has(data.{MARK}) && data.{MARK} != '' && metadata.topic == topic"


def filtered_config(flow: str, agent: str, topic: str, local: bool) -> FlowConfig:
    """``subscriber_config`` with its subscription behind a CEL filter that always holds."""
    raw = {
        "agent_flow": {"name": flow},
        "orchestration": {"mode": "sequential", "sequential_agents": [agent],
                          "timeout_seconds": 3600, "local_agents": local},
        "agents": {agent: {"handler": "bench.bus:delivered"}},
        "bus": {"subscribes": [{"topic": topic, "when": WHEN}]},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def w7_filter(
    system: AgentflowSystem, events: int, subscribers: int, filtered_first: Iterator[bool]
) -> Metrics:
    ARRIVALS.clear()
    REPEATS.clear()
    tag = uuid.uuid4().hex[:8]
    seconds: dict[str, float] = {}
    order = ("filtered", "plain") if next(filtered_first) else ("plain", "filtered")
    for way in order:
        topic = f"bench.w7f.{way}.{tag}"
        make = filtered_config if way == "filtered" else subscriber_config
        configs = [make(f"w7{way[0]}-{tag}-{index}", f"s{index}", topic, system.local)
                   for index in range(subscribers)]  # fmt: skip
        async with subscribed(system.client, configs, shared_queue=False) as subs:
            burst = await bus_burst(system.client, subs, topic, events)
        seconds[way] = burst.seconds
    deliveries = events * subscribers
    return {
        "plain_seconds": seconds["plain"],
        "filtered_seconds": seconds["filtered"],
        "plain_deliveries_per_s": deliveries / seconds["plain"],
        "filtered_deliveries_per_s": deliveries / seconds["filtered"],
        "cost_ratio": seconds["filtered"] / seconds["plain"],
        "repeated_calls": float(len(REPEATS)),
    }
