"""W8, live streaming: what streaming costs a run nobody watches, and how soon a watcher sees
an agent complete. ``python -m bench.streaming [--runs N] [--repeats N]`` (or ``make bench``).

- ``W8 streaming``: W1 (5 no-op agents in sequence, runs one after another) on two workers of
  the same process, one with the mode workflows as shipped (streaming on) and one with the
  sequential workflow as it was before streaming (``bench/unstreamed.py``), alternating run by
  run so load from elsewhere falls on both alike. ``cost_pct`` = median on ÷ median off - 1
  (target ≤ 5 %). Then runs with one watcher each (``FlowHandle.stream``): ``seen_p50/p95_ms``
  from an agent returning (its handler's last line, ``perf_counter``) to the watcher holding
  that agent's ``completed`` item.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from agentflow import Event, State
from agentflow.client.runner import Runner
from agentflow.worker.serve import build_worker
from bench.server import start_server
from bench.systems import REPO, flow_config
from bench.workloads import AGENTS, Metrics, p95

RETURNED: dict[tuple[str, str], float] = {}  # (event id, agent) -> when its handler returned


async def stamp(event: Event, state: State) -> dict[str, Any]:
    RETURNED[(event.id, event.target_agent)] = time.perf_counter()
    return {event.target_agent: True}


def _config() -> Any:
    config = flow_config("sequential", AGENTS, "noop")
    for agent in config.agents.values():
        agent.handler = "bench.streaming:stamp"
    return config


@contextlib.asynccontextmanager
async def _workers(client: Client) -> AsyncIterator[tuple[Runner, Runner]]:
    """Runners of the same flow: on a worker as shipped, and on one without streaming."""
    from agentflow.activities.agent import AgentActivities
    from agentflow.activities.registry import AgentRegistry
    from agentflow.worker.sandbox import faster_sandbox
    from agentflow.worker.telemetry import AgentCallInterceptor
    from bench.unstreamed import UnstreamedSequentialFlow

    config = _config()
    on_queue, off_queue = (f"bench-stream-{way}-{uuid.uuid4().hex[:6]}" for way in ("on", "off"))
    agent = AgentActivities(AgentRegistry.from_configs([(config, REPO)]))
    off = Worker(client, task_queue=off_queue, workflows=[UnstreamedSequentialFlow],
                 activities=[agent.run_named_agent, agent.run_agent],
                 interceptors=[AgentCallInterceptor()],
                 workflow_runner=faster_sandbox(None))  # fmt: skip
    async with build_worker(client, [(config, REPO)], task_queue=on_queue), off:
        yield Runner(config, client, on_queue), Runner(config, client, off_queue)


async def _timed(runner: Runner) -> float:
    started = time.perf_counter()
    await runner.run({})
    return (time.perf_counter() - started) * 1000


async def _watched(runner: Runner) -> list[float]:
    """One run with a watcher from its start: returned → seen, per agent."""
    handle = await runner.start({})
    seen: list[float] = []
    async for streamed in handle.stream(tokens=False):
        item = streamed.item
        if item.kind == "completed" and item.agent:
            seen.append((time.perf_counter() - RETURNED[(item.event_id, item.agent)]) * 1000)
    await handle.result()
    return seen


async def w8_streaming(system: Any, runs: int) -> Metrics:
    """``system`` is the suite's agentflow system (for its client); see the module docstring."""
    async with _workers(system.client) as (on, off):
        for runner in (on, off):  # warm up
            await _timed(runner)
        on_ms: list[float] = []
        off_ms: list[float] = []
        for index in range(2 * runs):  # alternate which goes first
            first, second = (on, off) if index % 2 == 0 else (off, on)
            a, b = await _timed(first), await _timed(second)
            on_ms.append(a if first is on else b)
            off_ms.append(b if first is on else a)
        seen: list[float] = []
        for _ in range(max(1, runs // 5)):
            seen += await _watched(on)
    on_median, off_median = statistics.median(on_ms), statistics.median(off_ms)
    return {"on_run_median_ms": on_median, "off_run_median_ms": off_median,
            "cost_pct": 100 * (on_median / off_median - 1),
            "seen_p50_ms": statistics.median(seen), "seen_p95_ms": p95(seen),
            "seen_samples": float(len(seen))}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    async def run() -> list[Metrics]:
        from bench.streaming import w8_streaming  # not __main__'s copy: the handler's RETURNED

        env = await start_server()
        try:
            system = type("S", (), {"client": env.client})()
            return [await w8_streaming(system, args.runs) for _ in range(args.repeats)]
        finally:
            await env.shutdown()

    for metrics in asyncio.run(run()):
        print("  ".join(f"{key} {value:.2f}" for key, value in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
