"""W14, the result cache (``cache = { ttl = ... }``): a one-agent flow's run when its agent's
result is cached (a hit: the agent does not run) against when it is not (a miss: the agent
runs and its result is stored), and against the same flow without a cache.
``python -m bench --only W14`` (or ``make bench``).

Two agents, each the only agent of its flow, runs one after another, alternating the ways
run by run so load from elsewhere falls on all alike:

- ``W14 cache, handler``: a no-op handler. ``uncached``: no ``cache`` table; ``miss``: a new
  input every run (lookup, run, store); ``hit``: the same input every run (lookup only). So
  ``miss - uncached`` is what the cache costs an agent that runs, and ``hit`` the floor of a
  run whose agent is skipped.
- ``W14 cache, LLM agent``: an LLM agent against a local server that answers at once
  (tests/llm_server.py): ``miss`` makes the model request, ``hit`` does not. A real model
  takes hundreds of milliseconds to seconds more per miss; ``saved_tokens`` is what one hit
  did not spend.

The store is SQLite in a temporary folder (the default store, ``[cache] path``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentflow.client.runner import Runner
from agentflow.config import FlowConfig, parse_config
from agentflow.worker.serve import build_worker
from bench.systems import REPO
from bench.workloads import Metrics, p95
from tests.llm_server import FakeLLM, Text


def _flow(name: str, agent: dict[str, Any], folder: Path, **tables: Any) -> FlowConfig:
    raw = {
        "agent_flow": {"name": f"bench-cache-{name}-{uuid.uuid4().hex[:6]}"},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a"],
                          "timeout_seconds": 120},
        "agents": {"a": agent},
        "cache": {"path": str(folder / "cache.sqlite")},
        **tables,
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def _times(ways: dict[str, Callable[[int], Awaitable[Any]]], runs: int) -> dict[str, Any]:
    for way in ways.values():  # warm up (and store the hit's entry)
        await way(0)
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for index in range(len(names) * runs):
        name = names[(index + index // len(names)) % len(names)]  # rotate who goes first
        started = time.perf_counter()
        result = await ways[name](index + 1)
        times[name].append((time.perf_counter() - started) * 1000)
        if result.results[0].cached != (name == "hit"):
            raise RuntimeError(f"a {name} run was {'' if result.results[0].cached else 'not '}"
                               "a cache hit")  # fmt: skip
    metrics: dict[str, Any] = {}
    for name, values in times.items():
        metrics[f"{name}_median_ms"] = statistics.median(values)
        metrics[f"{name}_p95_ms"] = p95(values)
    return metrics


async def w14_handler(system: Any, runs: int) -> Metrics:
    """``system`` is the suite's agentflow system (for its client)."""
    with tempfile.TemporaryDirectory() as folder:
        plain = {"handler": "bench.agents:noop"}
        cached = {**plain, "cache": {"ttl": "1h"}}
        configs = [_flow("plain", plain, Path(folder)), _flow("handler", cached, Path(folder))]
        queue = f"bench-cache-{uuid.uuid4().hex[:8]}"
        async with build_worker(system.client, [(c, REPO) for c in configs], task_queue=queue):
            uncached, cache = (Runner(c, system.client, queue) for c in configs)
            metrics = await _times({
                "uncached": lambda n: uncached.run({"n": n}),
                "miss": lambda n: cache.run({"n": n, "fresh": uuid.uuid4().hex}),
                "hit": lambda n: cache.run({"n": 0}),
            }, runs)  # fmt: skip
    metrics["miss_cost_ms"] = metrics["miss_median_ms"] - metrics["uncached_median_ms"]
    return metrics


async def w14_llm(system: Any, runs: int) -> Metrics:
    """An LLM agent's run, cache miss (a model request) against hit (none)."""
    with FakeLLM() as fake, tempfile.TemporaryDirectory() as folder:
        agent = {"system_prompt": "Answer.", "cache": {"ttl": "1h"}}
        config = _flow("llm", agent, Path(folder), llm={
            "provider": "ollama", "model": "bench", "base_url": fake.url("ollama")})  # fmt: skip
        queue = f"bench-cache-{uuid.uuid4().hex[:8]}"
        async with build_worker(system.client, [(config, REPO)], task_queue=queue):
            runner = Runner(config, system.client, queue)

            async def miss(n: int) -> Any:
                fake.script[:] = [Text("done")]
                return await runner.run({"message": f"question {uuid.uuid4().hex}"})

            metrics = await _times(
                {"miss": miss, "hit": lambda n: runner.run({"message": "question"})}, runs
            )
            hit = await runner.run({"message": "question"})
    if fake.invalid:
        raise RuntimeError(f"the fake sent replies the SDK rejects: {fake.invalid}")
    saved = hit.results[0].saved
    metrics["saved_tokens"] = saved.total_tokens if saved else 0
    metrics["saved_ms"] = metrics["miss_median_ms"] - metrics["hit_median_ms"]
    return metrics
