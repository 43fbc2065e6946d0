"""W16: event patterns over time windows (``[patterns.NAME]``, issue 19: "pattern throughput
in events per second"; "a burst of 10,000 events over 1,000 keys keeps every history bounded").

``events`` events published to one topic, spread evenly over ``keys`` keys (the publish key is
the pattern key, as docs/bus.md asks). One flow watches the topic with a count pattern of
``events / keys`` events of a key within 10 minutes, so each key's workflow takes all its
events, matches once, publishes that derived event on the bus, and ends idle (it cannot end
before: its window is open until the match). The events go out in
waves of ``WAVE_KEYS`` keys (all their events at once, ``IN_FLIGHT`` publishes at a time as in
W7), a wave as soon as the one ``WAVES_AHEAD`` before it has ended: a publish returns once the
bus shard has the event recorded, so an unpaced burst of 10,000 piles up in the 8 shard
sessions faster than they fan out, and on a loaded 2-core machine their workflow tasks then
ran over the SDK's 2 s deadlock limit again and again (bench/RESULTS.md, W16). The clock runs
from the first publish until every pattern workflow has ended, that is until every event
went through the bus's fan-out into its key's workflow and every match was published. Then
each workflow's result (its matches) is checked, and the longest history of any pattern
workflow run read from visibility.

- ``events_per_s``: events ÷ seconds, first publish → last pattern workflow ended;
- ``max_history_events`` / ``max_history_kb``: the longest and largest history of any run;
- ``runs``: pattern workflow runs (a run continues as new after 500 events of its key);
- ``repeat_runs``: runs a key had beyond its first (a repeated delivery after its workflow
  ended: see ``_matches``); each of them matched nothing;
- ``max_shard_history_kb`` / ``shard_runs``: the largest history of any bus shard session run
  (the sessions every publish goes through), and how many runs they took.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio.client import Client, WorkflowExecutionStatus

from agentflow.client.bus import client_request, forget, publish
from agentflow.config import FlowConfig, parse_config
from agentflow.names import (
    BUS_FLOW,
    DEAD_LETTER_WORKFLOW,
    PATTERN_WORKFLOW,
    pattern_workflow_id,
    session_workflow_id,
)
from agentflow.worker.serve import serving
from bench.bus import IN_FLIGHT, PHASE_TIMEOUT_SECONDS
from bench.systems import REPO, AgentflowSystem

Metrics = dict[str, float]
WAVE_KEYS = 100  # keys whose events are published together
WAVES_AHEAD = 2  # waves out before the first of them must have ended
PATTERN = "burst"
# The bus's shard sessions (every run of this bench's dev server), and its dead letters.
SHARDS_QUERY = f"WorkflowId STARTS_WITH '{session_workflow_id(BUS_FLOW, 'shard-')}'"
LETTERS_QUERY = f"WorkflowType = '{DEAD_LETTER_WORKFLOW}'"


def pattern_config(flow: str, topic: str, count: int) -> FlowConfig:
    raw = {
        "agent_flow": {"name": flow},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a"]},
        "agents": {"a": {"handler": "bench.agents:noop"}},
        # linger: each key's workflow ends 100 ms after its match, so the bench's clock stops
        # when the last key's has (the default, 30 s, would be counted in the throughput).
        "patterns": {PATTERN: {"kind": "count", "topic": topic, "count": count, "within": "10m",
                               "linger": "100ms", "key": "data.k",
                               "publish": f"{topic}.matched"}},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


def runs_query(flow: str, status: str | None = None) -> str:
    prefix = pattern_workflow_id(flow, PATTERN, "")
    query = f"WorkflowType = '{PATTERN_WORKFLOW}' AND WorkflowId STARTS_WITH '{prefix}'"
    return query + (f" AND ExecutionStatus = '{status}'" if status else "")


async def w16_patterns(system: AgentflowSystem, events: int, keys: int) -> Metrics:
    per_key = events // keys
    if events % keys or per_key < 2:
        raise ValueError(f"W16: {events} events over {keys} keys: not 2 or more for each key")
    client = system.client
    tag = uuid.uuid4().hex[:8]
    flow, topic = f"w16-{tag}", f"bench.w16.{tag}"
    config = pattern_config(flow, topic, per_key)
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(k: int, n: int) -> None:
        request = client_request(config, topic, {"k": f"k{k}"}, identity="bench",
                                 event_id=f"w16-{tag}-{k}-{n}", key=f"k{k}")  # fmt: skip
        async with limit:
            await publish(client, request)

    async def ended(count: int) -> None:
        while (await client.count_workflows(runs_query(flow, "Completed"))).count < count:
            await asyncio.sleep(0.5)

    waves = [range(first, min(first + WAVE_KEYS, keys)) for first in range(0, keys, WAVE_KEYS)]
    async with serving(client, [(config, REPO)], task_queue=f"bench-w16-{tag}"):
        try:
            async with asyncio.timeout(PHASE_TIMEOUT_SECONDS):
                started = time.perf_counter()
                for index, wave in enumerate(waves):
                    if index >= WAVES_AHEAD:
                        await ended(sum(map(len, waves[: index - WAVES_AHEAD + 1])))
                    await asyncio.gather(*(one(k, n) for k in wave for n in range(per_key)))
                await ended(keys)
                ended_at = time.perf_counter()
            matches, repeat_runs = await _matches(client, flow)
        finally:
            await forget(client, flow)
    shards = [run async for run in client.list_workflows(SHARDS_QUERY)]
    if matches != keys:
        letters = (await client.count_workflows(LETTERS_QUERY)).count
        raise RuntimeError(f"W16: {matches} matches published, {keys} expected (one per key); "
                           f"{letters} dead letters")  # fmt: skip
    runs = [run async for run in client.list_workflows(runs_query(flow))]
    return {
        "max_shard_history_kb": max(run.raw_info.history_size_bytes for run in shards) / 1024,
        "shard_runs": float(len(shards)),
        "events_per_s": events / (ended_at - started),
        "seconds": ended_at - started,
        "matches": float(matches),
        "runs": float(len(runs)),
        "repeat_runs": float(repeat_runs),
        "max_history_events": float(max(run.history_length for run in runs)),
        "max_history_kb": max(run.raw_info.history_size_bytes for run in runs) / 1024,
    }


async def _matches(client: Client, flow: str) -> tuple[int, int]:
    """The matches published by every completed pattern workflow run of ``flow`` (their
    results), and the runs a key had beyond its first: a key's workflow that ended and then
    got a repeated delivery (a fan-out re-run after a lost shard workflow task, later than
    ``linger``) starts a new run, which waits out its window with that event alone."""
    limit = asyncio.Semaphore(IN_FLIGHT)
    runs = [run async for run in client.list_workflows(runs_query(flow))]

    async def one(workflow_id: str, run_id: str) -> int:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async with limit:
            return int(await handle.result())

    done = [run for run in runs if run.status == WorkflowExecutionStatus.COMPLETED]
    matches = sum(await asyncio.gather(*(one(run.id, run.run_id) for run in done)))
    return matches, len(runs) - len({run.id for run in runs})
